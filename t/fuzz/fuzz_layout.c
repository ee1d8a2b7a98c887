/*
 * t/fuzz/fuzz_layout.c: layout.c on layouts the input describes, every
 * metadata cluster decoded as a reader would and checked against a count
 * of the same ranges made without layout.c, then made again by a writer
 * and a run walk started at sampled places.  The count and the reader are
 * the model in t/model.c, which t/unit.c shares; this file makes the
 * inputs and aborts on the first check the model reports failed.
 *
 * The input, read a byte at a time (zeros once it runs out):
 *
 *	flags		bits 0-1: cluster_bits 9 + (0..3); bit 2: place it
 *			within a plan, last (layout_within); bit 3: set the
 *			header; bit 4: give layout_init (and
 *			layout_set_zeros) the ranges as made, not merged;
 *			bit 5: the plan is the whole disk, not the data, the
 *			zeros and the last byte; bit 6: zero ranges; bit 7:
 *			set them last, not right after layout_init
 *	magnitude, u32	the disk size: the u32 cut to magnitude % (bits + 21)
 *			bits, so that the guest has at most 2^20 clusters
 *	[header]	if flags bit 3: version, which, then if which bit 0 a
 *			u16 name length and a seed, if bit 1 a format length
 *			and a seed
 *	[zeros]		if flags bit 6: a byte n, then n bytes (or the rest)
 *			that make the zero ranges as the data ranges are made
 *	ranges		the rest: up to 64, each a byte saying how and the
 *			bytes it asks for (see make_ranges)
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layout.h"
#include "meta.h"
#include "ranges.h"
#include "fuzz.h"
#include "t/model.h"

#define MAX_GUEST_BITS	20	/* 512 MiB of 512-byte clusters, 4 GiB of 4 KiB */
#define MAX_DATA	(1u << 15)	/* clusters the ranges may touch, summed */
#define MAX_RANGES	64
#define MAX_NAME	1100	/* past the 1023 bytes a name may have */
#define MAX_FORMAT	20	/* past the 15 bytes a format may have */
#define SEEK_MOST	64	/* seeks checked per layout, past its parts' edges */

struct input {
	const uint8_t *p;
	size_t n;
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

/* Abort with the model's account of the first check that failed. */
static void
need_model(int status, const struct model_failure *f)
{
	if (status == 0)
		return;
	if (f->relation == NULL)
		fuzz_fail("%s", f->what);
	fuzz_fail("%s: got %" PRIu64 " (0x%" PRIx64 "), want %s%" PRIu64 " (0x%"
	    PRIx64 ")", f->what, f->got, f->got, f->relation, f->want, f->want);
}

/*
 * Make every metadata cluster and have the model read them; then the
 * writer must stop, and leave the cluster it is handed untouched.  Then
 * the writer and the run walk from sampled places, against the same.
 */
static void
check_metadata(const struct layout *lo, const struct model *m)
{
	uint64_t cs = m->cluster_size, meta = model_meta_clusters(m), n = 0;
	unsigned char *img = xcalloc(meta, cs), *spare = xcalloc(cs, 1);
	struct meta_writer mw;
	struct model_failure f;

	meta_writer_init(&mw, lo);
	while (n < meta && meta_writer_next(&mw, img + n * cs))
		n++;
	need_model(model_check_metadata(m, img, n, &f), &f);
	memset(spare, 0xa5, cs);
	need(meta_writer_next(&mw, spare) == 0, "a metadata cluster after the last");
	for (uint64_t i = 0; i < cs; i++)
		need(spare[i] == 0xa5, "the call after the last wrote byte %llu", U(i));
	need(meta_writer_next(&mw, spare) == 0, "a metadata cluster after the end");
	need_model(model_check_seek(m, lo, img, SEEK_MOST, &f), &f);
	need_model(model_check_run_seek(m, lo, SEEK_MOST, &f), &f);
	free(spare);
	free(img);
}

/* The ranges made from in, merged into *merged unless raw; returns them. */
static const struct range *
given_ranges(const struct range *made, size_t nmade, int raw,
    struct range_list *merged, size_t *n)
{
	if (raw) {
		*n = nmade;
		return made;
	}
	for (size_t i = 0; i < nmade; i++)
		need(ranges_add(merged, made[i].offset, made[i].length) == 0,
		    "ranges_add failed");
	ranges_merge(merged);
	*n = merged->n;
	return merged->v;
}

/*
 * layout_set_zeros, which may rightly refuse raw zeros and zero clusters
 * in version 2, and then must leave lo as it was; the model takes the
 * zeros as made.  Returns whether lo has them.
 */
static int
set_zeros(struct layout *lo, struct model *m, const struct range *zeros,
    size_t nzeros, const struct range *made, size_t nmade, int raw)
{
	struct layout was = *lo;
	struct model_failure f;
	unsigned expected = raw ? model_range_errors(made, nmade, lo->input_size) : 0;
	unsigned got;

	if (expected == 0) {
		need(model_set_zeros(m, made, nmade) == 0, "out of memory");
		expected = model_zero_errors(m, lo->version);
	}
	got = layout_set_zeros(lo, zeros, nzeros);
	need(expected == 0 ? got == LAYOUT_OK : expected >> got & 1,
	    "layout_set_zeros: %s (%u), want error set 0x%x", layout_strerror(got),
	    got, expected);
	if (got == LAYOUT_OK)
		return 1;
	need_model(model_check_same_sizes(lo, &was, "a refused layout_set_zeros", &f),
	    &f);
	need_model(model_check_same_offsets(lo, &was, "a refused layout_set_zeros",
	    &f), &f);
	return 0;
}

/*
 * lo and m placed within a plan that holds their clusters: the whole
 * disk (counted alone, for the model), or the data, the zeros and the
 * last byte, which may reach another L2 table.
 */
static void
place_within(struct layout *lo, struct model *m, int whole, const struct range *made,
    size_t nmade, const struct range *zmade, size_t nzmade)
{
	struct range_list planned = { NULL, 0, 0 };
	uint64_t disk = lo->input_size;
	enum layout_error got;
	struct layout plan;
	struct model pm;

	if (whole && disk > 0)
		need(ranges_add(&planned, 0, disk) == 0, "out of memory");
	for (size_t i = 0; !whole && i < nmade + nzmade; i++) {
		const struct range *r = i < nmade ? &made[i] : &zmade[i - nmade];

		if (r->length > 0)
			need(ranges_add(&planned, r->offset, r->length) == 0, "out of memory");
	}
	if (!whole && disk > 0)
		need(ranges_add(&planned, disk - 1, 1) == 0, "out of memory");
	ranges_merge(&planned);
	got = layout_init(&plan, disk, lo->cluster_bits, planned.v, planned.n);
	need(got == LAYOUT_OK, "layout_init of the plan: %s", layout_strerror(got));
	if (whole)
		model_count(&pm, m->cluster_bits, disk, m->guest_clusters, m->l1_entries);
	else
		need(model_init(&pm, m->cluster_bits, disk, planned.v, planned.n) == 0,
		    "out of memory");
	got = layout_within(lo, &plan);
	need(got == LAYOUT_OK, "layout_within: %s", layout_strerror(got));
	need(model_within(m, &pm) == 0, "model_within: no room in the plan");
	model_free(&pm);
	ranges_free(&planned);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = { data, size };
	struct range made[MAX_RANGES], zmade[MAX_RANGES];
	struct range_list merged = { NULL, 0, 0 }, zmerged = { NULL, 0, 0 };
	struct header h = { 0, 3, NULL, NULL };
	char name[MAX_NAME + 1], format[MAX_FORMAT + 1];
	struct layout lo, was;
	struct model m;
	struct model_failure f;
	unsigned flags, bits, mag, expected, got;
	uint64_t disk;
	const struct range *ranges, *zeros = NULL;
	size_t nmade, nranges, nzmade = 0, nzeros = 0;
	int raw, zeros_last;

	flags = take(&in);
	bits = MIN_CLUSTER_BITS + (flags & 3);
	raw = flags >> 4 & 1;
	zeros_last = flags >> 7 & 1;
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
	if (flags & 64) {
		size_t n = take(&in);
		struct input zin = { in.p, n < in.n ? n : in.n };

		in.p += zin.n;
		in.n -= zin.n;
		nzmade = make_ranges(&zin, disk, bits, raw, zmade);
		zeros = given_ranges(zmade, nzmade, raw, &zmerged, &nzeros);
	}
	nmade = make_ranges(&in, disk, bits, raw, made);
	ranges = given_ranges(made, nmade, raw, &merged, &nranges);

	expected = raw ? model_range_errors(made, nmade, disk) : 0;
	got = layout_init(&lo, disk, bits, ranges, nranges);
	if (expected != 0 || got != LAYOUT_OK) {
		need(expected >> got & 1, "layout_init: %s (%u), want error set 0x%x",
		    layout_strerror(got), got, expected);
		ranges_free(&merged);
		ranges_free(&zmerged);
		return 0;
	}

	need(model_init(&m, bits, disk, made, nmade) == 0, "out of memory");
	need_model(model_check_fields(&m, &lo, &f), &f);
	if ((flags & 64) && !zeros_last &&
	    !set_zeros(&lo, &m, zeros, nzeros, zmade, nzmade, raw))
		goto out;
	if (h.set) {
		was = lo;
		got = layout_set_header(&lo, h.version, h.name, h.format);
		expected = model_header_errors(h.version, h.name, h.format,
		    m.cluster_size) | model_zero_errors(&m, h.version);
		need_model(model_check_same_sizes(&lo, &was, "layout_set_header", &f), &f);
		need_model(model_check_same_offsets(&lo, &was, "layout_set_header", &f),
		    &f);
		need(expected == 0 ? got == LAYOUT_OK : expected >> got & 1,
		    "layout_set_header: %s (%u), want error set 0x%x",
		    layout_strerror(got), got, expected);
		if (got != LAYOUT_OK)
			goto out;
		model_set_header(&m, h.version, h.name, h.format);
	}
	if ((flags & 64) && zeros_last &&
	    !set_zeros(&lo, &m, zeros, nzeros, zmade, nzmade, raw))
		goto out;
	if (flags & 4)
		place_within(&lo, &m, flags >> 5 & 1, made, nmade, zmade, nzmade);
	need_model(model_check_fields(&m, &lo, &f), &f);
	need_model(model_check_runs(&m, &lo, &f), &f);
	check_metadata(&lo, &m);
out:
	model_free(&m);
	ranges_free(&merged);
	ranges_free(&zmerged);
	return 0;
}

/*
 * t/fuzz/fuzz_ranges.c: ranges_read and ranges_merge on any bytes, then
 * layout_init and the metadata walk on the ranges they give.
 *
 * The input is an 8-byte little-endian number, then a range file.  The
 * file is read at two disk sizes: the number, and its top 16 bits, a disk
 * small enough that the merge is checked byte by byte; at the first size
 * once more as for an overlay (-b); and at that size grown past its
 * rounding to whole sectors, where a map of QEMU's, which covers the disk
 * it was made of and no more, stops short.  The last byte of the input
 * picks the cluster size and whether the image is placed within the plan
 * of its whole disk, as -o places it.  Disks past what
 * qcow2 can hold are meant: layout_init must refuse them, not wrap.
 */
#define _POSIX_C_SOURCE 200809L	/* fmemopen */

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layout.h"
#include "meta.h"
#include "range_entry.h"
#include "ranges.h"
#include "fuzz.h"

#define EXACT_DISK	(UINT64_C(64) << 10)	/* disks checked byte by byte */
#define MAX_META_CLUSTERS 4096			/* walks longer than this are skipped */
#define MAX_META_BYTES	(UINT64_C(4) << 20)
#define MAX_LINE	4096			/* bytes a line of a range file may hold */

#define STOPS_SHORT	"the map stops before the end of the disk"
#define LINE_TOO_LONG	"line longer than 4096 bytes"

/*
 * The range file as ranges_read sees its lines: how many there are, the
 * last one unended too (LF, CR, and CRLF once, end them), whether it is
 * JSON, and the length of each without its end.  ranges_read skips the
 * spaces, tabs, CRs and LFs at the start of the file to find the first
 * character, which tells JSON from lines, and reads a file of lines from
 * there: what it skipped is in no line it holds, and is not counted.
 */
struct text_lines {
	const char *text;
	size_t len;
	size_t start;		/* of the first line read, if of lines */
	size_t lines;
	int json;
	size_t *length;		/* of line k + 1 at [k], as read */
};

static int
is_line_end(const char *text, size_t i)
{
	return text[i] == '\r' || (text[i] == '\n' && (i == 0 || text[i - 1] != '\r'));
}

/* What reading the range file at one disk size gave. */
struct reading {
	uint64_t disk;
	int overlay;
	int status;
	struct range_list list;
	struct ranges_error error;
};

static void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	need(p != NULL, "out of memory");
	return p;
}

static void
count_lines(struct text_lines *t, const char *text, size_t len)
{
	size_t start = 0, k = 0;

	while (start < len && (text[start] == ' ' || text[start] == '\t' ||
	    text[start] == '\r' || text[start] == '\n'))
		start++;
	t->text = text;
	t->len = len;
	t->start = start;
	t->json = start < len && text[start] == '[';
	t->lines = 0;
	for (size_t i = 0; i < len; i++)
		t->lines += is_line_end(text, i);
	if (len > 0 && text[len - 1] != '\n' && text[len - 1] != '\r')
		t->lines++;
	t->length = xmalloc((t->lines + 1) * sizeof(*t->length));
	memset(t->length, 0, (t->lines + 1) * sizeof(*t->length));
	for (size_t i = 0; i < len; i++) {
		if (is_line_end(text, i))
			k++;
		else if (text[i] != '\n' && i >= start)
			t->length[k]++;
	}
}

static int
by_offset(const void *a, const void *b)
{
	const struct range *x = a, *y = b;

	return (x->offset > y->offset) - (x->offset < y->offset);
}

static void
read_at(struct reading *r, char *text, size_t len, uint64_t disk, int overlay)
{
	FILE *in;

	memset(r, 0, sizeof(*r));
	r->disk = disk;
	r->overlay = overlay;
	/* glibc 2.22 and later open an empty buffer as an empty stream. */
	in = fmemopen(text, len, "r");
	need(in != NULL, "fmemopen: %s", strerror(errno));
	r->status = ranges_read(in, disk, overlay, &r->list, &r->error);
	fclose(in);
}

/*
 * What ranges_read promises, on success and on failure.  A map that stops
 * short is found at the end, and named at the last line.  A file of lines
 * is read line by line to the first error: every line read holds at most
 * MAX_LINE bytes, and the one that holds more is the error.
 */
static void
check_reading(const struct reading *r, size_t newlines, const struct text_lines *t)
{
	size_t read = r->status == 0 ? t->lines : r->error.line;

	for (size_t k = 0; !t->json && k < read && k < t->lines; k++) {
		int too_long = r->status != 0 && k + 1 == r->error.line &&
		    strcmp(r->error.why, LINE_TOO_LONG) == 0;

		need((t->length[k] > MAX_LINE) == too_long,
		    "line %zu of %zu bytes %s", k + 1, t->length[k],
		    too_long ? "refused as too long" : "read");
	}
	if (r->status != 0) {
		need(r->status == -1, "ranges_read returned %d", r->status);
		need(r->error.why != NULL, "failure without a reason");
		need(r->error.why[0] != '\0', "failure with an empty reason");
		/* Lowercase, but for acronyms: "JSON value too long". */
		need(!(isupper((unsigned char)r->error.why[0]) &&
		    islower((unsigned char)r->error.why[1])) &&
		    r->error.why[strlen(r->error.why) - 1] != '.',
		    "reason \"%s\" is not a lowercase phrase", r->error.why);
		need(r->error.line <= newlines + 1, "error on line %lu of %zu",
		    r->error.line, newlines + 1);
		need(strcmp(r->error.why, STOPS_SHORT) != 0 ||
		    r->error.line == t->lines, "a map stops short on line %lu of %zu",
		    r->error.line, t->lines);
		need(!t->json || strcmp(r->error.why, LINE_TOO_LONG) != 0,
		    "a line of JSON too long");
		return;
	}
	for (size_t i = 0; i < r->list.n; i++) {
		const struct range *v = &r->list.v[i];

		need(v->length > 0, "range %zu is empty", i);
		need(v->offset < r->disk && v->length <= r->disk - v->offset,
		    "range %zu (%llu, %llu) is beyond the disk of %llu", i,
		    (unsigned long long)v->offset, (unsigned long long)v->length,
		    (unsigned long long)r->disk);
	}
}

static const char *
skip_blanks(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

/*
 * The next line of a file of lines that holds an entry, neither blank nor
 * a comment, from *at on: copied into line (MAX_LINE + 1 bytes), *at past
 * it and *number its line.  Returns its first character that is not a
 * blank, or NULL at the end.
 */
static const char *
next_entry(const struct text_lines *t, size_t *at, unsigned long *number, char *line)
{
	while (*at < t->len) {
		const char *s;
		size_t n;

		for (n = 0; *at + n < t->len && t->text[*at + n] != '\n' &&
		    t->text[*at + n] != '\r'; n++)
			;
		need(n <= MAX_LINE, "a line of %zu bytes read", n);
		memcpy(line, t->text + *at, n);
		line[n] = '\0';
		*at += n;
		if (*at < t->len && t->text[(*at)++] == '\r' && *at < t->len &&
		    t->text[*at] == '\n')
			(*at)++;
		++*number;
		s = skip_blanks(line);
		if (*s != '\0' && *s != '#')
			return s;
	}
	return NULL;
}

/* The number of the line before the first that ranges_read reads as lines. */
static unsigned long
lines_skipped(const struct text_lines *t)
{
	unsigned long n = 0;

	for (size_t i = 0; i < t->start; i++)
		n += is_line_end(t->text, i);
	return n;
}

/* Whether an entry is of nbdinfo --map: it has a type and a description. */
static int
is_nbdinfo_entry(const char *s, uint64_t *offset, uint64_t *length)
{
	uint64_t type;
	char *end;

	need(parse_number(s, &end, offset) == 0 &&
	    parse_number(skip_blanks(end), &end, length) == 0,
	    "an entry read without its numbers: %s", s);
	return end != skip_blanks(end) &&
	    parse_number(skip_blanks(end), &end, &type) == 0 &&
	    end != skip_blanks(end) && isalpha((unsigned char)*skip_blanks(end));
}

/*
 * A map of nbdinfo --map that reads covers the disk: its entries, told by
 * their numbers here rather than by ranges_read, follow each other from 0
 * and end at the size or its rounding to whole sectors.  A file of lines
 * is such a map when its first entry has a type and a description.
 */
static void
check_map_covers(const struct reading *r, const struct text_lines *t)
{
	uint64_t covered = 0, limit = r->disk, offset, length;
	unsigned long number = 0;
	char *line = xmalloc(MAX_LINE + 1);
	const char *s;
	size_t at = t->start;

	if (r->status != 0 || t->json ||
	    (s = next_entry(t, &at, &number, line)) == NULL ||
	    !is_nbdinfo_entry(s, &offset, &length)) {
		free(line);
		return;
	}
	if (r->disk % 512 != 0)
		limit = r->disk - r->disk % 512 > UINT64_MAX - 512 ? UINT64_MAX :
		    r->disk - r->disk % 512 + 512;
	do {
		is_nbdinfo_entry(s, &offset, &length);
		need(offset == covered, "a map read with an entry at %llu after %llu",
		    (unsigned long long)offset, (unsigned long long)covered);
		covered = offset + length;
	} while ((s = next_entry(t, &at, &number, line)) != NULL);
	need(covered >= r->disk && covered <= limit, "a map read at %llu covers %llu",
	    (unsigned long long)r->disk, (unsigned long long)covered);
	free(line);
}

/*
 * An overlay refuses a map of lines as an allocation map only at its
 * first entry, and only if that says what nbdinfo says of allocation.
 */
static void
check_allocation_refused(const struct reading *overlay, const struct text_lines *t)
{
	static const char *const allocation[] = { "data", "hole", "zero", "hole,zero" };
	unsigned long number = lines_skipped(t);
	char *line = xmalloc(MAX_LINE + 1);
	const char *s, *word;
	size_t at = t->start, len;
	int found = 0;

	if (overlay->status == 0 || t->json ||
	    strcmp(overlay->error.why, ALLOCATION_OVER_BACKING) != 0) {
		free(line);
		return;
	}
	s = next_entry(t, &at, &number, line);
	need(s != NULL && number == overlay->error.line,
	    "refused as an allocation map on line %lu, its first entry on line %lu",
	    overlay->error.line, number);
	for (len = strlen(s); s[len - 1] == ' ' || s[len - 1] == '\t'; len--)
		;
	for (word = s + len; word > s && word[-1] != ' ' && word[-1] != '\t'; word--)
		;
	for (size_t i = 0; i < sizeof(allocation) / sizeof(allocation[0]); i++)
		found |= strlen(allocation[i]) == (size_t)(s + len - word) &&
		    memcmp(allocation[i], word, (size_t)(s + len - word)) == 0;
	need(found, "refused as an allocation map: %s", line);
	free(line);
}

/*
 * A map of --map is refused over a backing file by its first line, the
 * first that is not blank, which begins with its header.
 */
static void
check_map_refused(const struct reading *overlay, const struct text_lines *t)
{
	size_t header = strlen(RANGES_MAP_HEADER);

	if (overlay->status == 0 || strcmp(overlay->error.why, RANGES_MAP_OVERLAY) != 0)
		return;
	need(!t->json && overlay->error.line == lines_skipped(t) + 1,
	    "refused as a map of --map on line %lu, its first line is %lu",
	    overlay->error.line, lines_skipped(t) + 1);
	need(t->len - t->start >= header &&
	    memcmp(t->text + t->start, RANGES_MAP_HEADER, header) == 0,
	    "refused as a map of --map, its first line not its header");
}

/*
 * The smaller disk accepts fewer extents, and cuts more off those of
 * QEMU's maps (which may run to whole sectors past the size); and a map
 * of QEMU's that covers it stops short of the larger.  Nothing else
 * differs.  So what reads at it reads at the larger one too, as the
 * ranges read there cut at the smaller size, unless it is a map that
 * stops short there; and what fails at the larger one fails no later at
 * the smaller.
 */
static void
check_sizes_agree(const struct reading *small, const struct reading *big)
{
	size_t k = 0;

	if (small->disk > big->disk)
		return;
	if (small->status != 0) {
		if (big->status != 0)
			need(small->error.line <= big->error.line,
			    "fails on line %lu at the smaller size, %lu at the larger",
			    small->error.line, big->error.line);
		return;
	}
	if (big->status != 0 && strcmp(big->error.why, STOPS_SHORT) == 0)
		return;
	need(big->status == 0, "reads at %llu but not at %llu: %s",
	    (unsigned long long)small->disk, (unsigned long long)big->disk,
	    big->error.why);
	for (size_t i = 0; i < big->list.n; i++) {
		struct range r = big->list.v[i];

		if (r.offset >= small->disk)
			continue;
		if (r.length > small->disk - r.offset)
			r.length = small->disk - r.offset;
		need(k < small->list.n, "more ranges at %llu than at %llu",
		    (unsigned long long)big->disk, (unsigned long long)small->disk);
		need(small->list.v[k].offset == r.offset &&
		    small->list.v[k].length == r.length,
		    "range %zu at %llu is not range %zu at %llu cut", k,
		    (unsigned long long)small->disk, i, (unsigned long long)big->disk);
		k++;
	}
	need(k == small->list.n, "%zu ranges at %llu, %zu at %llu cut", small->list.n,
	    (unsigned long long)small->disk, k, (unsigned long long)big->disk);
}

/*
 * An overlay takes as data only what the top image holds of an allocation
 * depth map, not what its backing layers do, refuses an allocation map
 * at its first entry or the comment that begins a map of --map, and
 * refuses a file of nothing but space, which an image reads as no
 * ranges; nothing else differs.  So the file reads or
 * fails the same way, but that an overlay may refuse an allocation map
 * that an image reads or fails on no earlier line; and what it reads for
 * an overlay is some of what it reads for an image that is none, in the
 * same order.
 */
static void
check_overlay_agrees(const struct reading *overlay, const struct reading *image)
{
	size_t k = 0;

	if (overlay->status != 0 &&
	    strcmp(overlay->error.why, ALLOCATION_OVER_BACKING) == 0) {
		need(image->status == 0 || image->error.line >= overlay->error.line,
		    "fails on line %lu (%s) for an image, refused as an allocation "
		    "map on line %lu for an overlay", image->error.line,
		    image->error.why, overlay->error.line);
		return;
	}
	if (overlay->status != 0 && strcmp(overlay->error.why, RANGES_MAP_OVERLAY) == 0) {
		need(image->status == 0 || image->error.line >= overlay->error.line,
		    "fails on line %lu (%s) for an image, refused as a map of --map "
		    "on line %lu for an overlay", image->error.line, image->error.why,
		    overlay->error.line);
		return;
	}
	if (overlay->status != 0 && strcmp(overlay->error.why, RANGES_EMPTY_OVERLAY) == 0) {
		need(overlay->error.line == 0 && image->status == 0 && image->list.n == 0,
		    "refused as empty for an overlay, %s with %zu ranges for an image",
		    image->status == 0 ? "read" : "failed", image->list.n);
		return;
	}
	need(overlay->status == image->status, "reads %s for an overlay only",
	    overlay->status == 0 ? "well" : "badly");
	if (overlay->status != 0) {
		need(overlay->error.line == image->error.line &&
		    strcmp(overlay->error.why, image->error.why) == 0,
		    "fails on line %lu (%s) for an overlay, %lu (%s) for an image",
		    overlay->error.line, overlay->error.why, image->error.line,
		    image->error.why);
		return;
	}
	for (size_t i = 0; i < image->list.n && k < overlay->list.n; i++)
		if (memcmp(&image->list.v[i], &overlay->list.v[k],
		    sizeof(struct range)) == 0)
			k++;
	need(k == overlay->list.n, "range %zu of an overlay is none of an image", k);
}

/*
 * Byte by byte, for a small disk: a byte is in a merged range exactly
 * when some input range holds it.
 */
static void
check_union_bytes(const struct range *in, size_t nin, const struct range *out,
    size_t nout, uint64_t disk)
{
	int32_t *edge = calloc(disk + 1, sizeof(*edge));
	int32_t depth = 0;
	size_t k = 0;

	need(edge != NULL, "out of memory");
	for (size_t i = 0; i < nin; i++) {
		edge[in[i].offset]++;
		edge[in[i].offset + in[i].length]--;
	}
	for (uint64_t x = 0; x < disk; x++) {
		int held;

		depth += edge[x];
		while (k < nout && out[k].offset + out[k].length <= x)
			k++;
		held = k < nout && out[k].offset <= x;
		need((depth > 0) == held, "byte %llu is %s the merged ranges",
		    (unsigned long long)x, held ? "wrongly in" : "missing from");
	}
	free(edge);
}

/* ranges_merge leaves the union of list in order, as few ranges as can hold it. */
static void
check_merge(struct range_list *list, uint64_t disk)
{
	size_t n = list->n, k = 0, i = 0;
	struct range *in = xmalloc(n * sizeof(*in));
	uint64_t in_bytes = 0, out_bytes = 0;

	if (n > 0)
		memcpy(in, list->v, n * sizeof(*in));
	ranges_merge(list);
	need(list->n <= n, "merge made %zu ranges of %zu", list->n, n);
	need((list->n == 0) == (n == 0), "merge made %zu ranges of %zu", list->n, n);
	for (size_t j = 0; j < list->n; j++) {
		const struct range *r = &list->v[j];

		need(r->length > 0, "merged range %zu is empty", j);
		need(r->offset < disk && r->length <= disk - r->offset,
		    "merged range %zu is beyond the disk", j);
		need(j == 0 || r->offset > r[-1].offset + r[-1].length,
		    "merged ranges %zu and %zu overlap or touch", j - 1, j);
		out_bytes += r->length;
	}

	/* The union again, by a sweep over a sorted copy. */
	if (n > 0)
		qsort(in, n, sizeof(*in), by_offset);
	while (i < n) {
		uint64_t start = in[i].offset, end = start + in[i].length;

		for (i++; i < n && in[i].offset <= end; i++)
			if (in[i].offset + in[i].length > end)
				end = in[i].offset + in[i].length;
		need(k < list->n, "the union has more than %zu ranges", list->n);
		need(list->v[k].offset == start &&
		    list->v[k].offset + list->v[k].length == end,
		    "merged range %zu is [%llu, %llu), the union has [%llu, %llu)", k,
		    (unsigned long long)list->v[k].offset,
		    (unsigned long long)(list->v[k].offset + list->v[k].length),
		    (unsigned long long)start, (unsigned long long)end);
		k++;
	}
	need(k == list->n, "%zu merged ranges, the union has %zu", list->n, k);
	for (i = 0; i < n; i++)
		in_bytes += in[i].length;
	need(out_bytes <= in_bytes, "merge grew the ranges");
	if (disk <= EXACT_DISK)
		check_union_bytes(in, n, list->v, list->n, disk);
	free(in);
}

/*
 * Ranges that ranges_merge made are ones layout_init takes; where the
 * image is small enough, produce every metadata cluster of it.
 */
static void
check_layout(const struct range_list *list, uint64_t disk, unsigned pick)
{
	unsigned bits = MIN_CLUSTER_BITS +
	    (pick & 0x7f) % (MAX_CLUSTER_BITS - MIN_CLUSTER_BITS + 1);
	struct meta_writer mw;
	struct layout lo, plan;
	struct range whole = { 0, disk };
	enum layout_error e;
	unsigned char *cluster;
	uint64_t meta, n = 0;

	e = layout_init(&lo, disk, bits, list->v, list->n);
	need(e != LAYOUT_RANGE_ORDER && e != LAYOUT_RANGE_BEYOND &&
	    e != LAYOUT_BAD_CLUSTER_BITS, "layout_init refused merged ranges: %s",
	    layout_strerror(e));
	if (e != LAYOUT_OK)
		return;
	/* The plan of a large disk may be too large for an image. */
	if ((pick & 0x80) &&
	    layout_init(&plan, disk, bits, &whole, disk > 0) == LAYOUT_OK) {
		need(layout_within(&lo, &plan) == LAYOUT_OK,
		    "the layout does not fit within the plan of its whole disk");
		need(lo.data_clusters == 0 || lo.data_offset == plan.data_offset,
		    "within the plan, the data not at the plan's");
	}
	need(layout_image_size(&lo) <= lo.total_clusters * lo.cluster_size &&
	    layout_image_size(&lo) > (lo.total_clusters - 1) * lo.cluster_size,
	    "image size does not end in the last cluster");
	meta = layout_meta_clusters(&lo);
	need(meta >= 3 && meta <= lo.total_clusters, "%llu metadata clusters of %llu",
	    (unsigned long long)meta, (unsigned long long)lo.total_clusters);
	if (meta > MAX_META_CLUSTERS || meta * lo.cluster_size > MAX_META_BYTES)
		return;
	cluster = xmalloc(lo.cluster_size);
	meta_writer_init(&mw, &lo);
	while (n <= meta && meta_writer_next(&mw, cluster))
		n++;
	need(n == meta, "%llu metadata clusters made, %llu promised",
	    (unsigned long long)n, (unsigned long long)meta);
	need(meta_writer_next(&mw, cluster) == 0, "a cluster after the last");
	free(cluster);
}

/*
 * An allocation map that an image reads is a map of QEMU's: it covers
 * the disk and stops short of one a sector past the size's rounding.
 */
static void
check_allocation_covers(const struct reading *overlay, const struct reading *image,
    const struct reading *grown)
{
	if (overlay->status == 0 || image->status != 0 || grown->disk <= image->disk ||
	    strcmp(overlay->error.why, ALLOCATION_OVER_BACKING) != 0)
		return;
	need(grown->status != 0 && strcmp(grown->error.why, STOPS_SHORT) == 0,
	    "an allocation map read at %llu %s at %llu",
	    (unsigned long long)image->disk,
	    grown->status == 0 ? "reads too" : grown->error.why,
	    (unsigned long long)grown->disk);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct reading big, small, overlay, grown;
	struct text_lines lines;
	uint64_t number = 0, more;
	size_t skip = size < 8 ? size : 8, len = size - skip, newlines = 0;
	unsigned pick = size > 0 ? data[size - 1] : 0;
	char *text;

	for (size_t i = 0; i < skip; i++)
		number |= (uint64_t)data[i] << (8 * i);
	text = xmalloc(len);
	if (len > 0)
		memcpy(text, data + skip, len);
	/* Line ends as ranges_read counts them: LF, CR, and CRLF once. */
	for (size_t i = 0; i < len; i++)
		newlines += is_line_end(text, i);
	count_lines(&lines, text, len);
	/* Past the size rounded to sectors, by a sector; as far as 64 bits go. */
	more = 512 + (512 - number % 512) % 512;
	read_at(&big, text, len, number, 0);
	read_at(&small, text, len, number >> 48, 0);
	read_at(&overlay, text, len, number, 1);
	read_at(&grown, text, len, number > UINT64_MAX - more ? number : number + more, 0);
	check_reading(&big, newlines, &lines);
	check_reading(&small, newlines, &lines);
	check_reading(&overlay, newlines, &lines);
	check_reading(&grown, newlines, &lines);
	check_map_covers(&big, &lines);
	check_map_covers(&small, &lines);
	check_map_covers(&overlay, &lines);
	check_map_covers(&grown, &lines);
	check_allocation_refused(&overlay, &lines);
	check_map_refused(&overlay, &lines);
	check_sizes_agree(&small, &big);
	check_sizes_agree(&big, &small);
	check_sizes_agree(&big, &grown);
	check_overlay_agrees(&overlay, &big);
	check_allocation_covers(&overlay, &big, &grown);

	if (big.status == 0) {
		check_merge(&big.list, big.disk);
		check_layout(&big.list, big.disk, pick);
	}
	if (small.status == 0) {
		check_merge(&small.list, small.disk);
		check_layout(&small.list, small.disk, pick);
	}
	ranges_free(&big.list);
	ranges_free(&small.list);
	ranges_free(&overlay.list);
	ranges_free(&grown.list);
	free(lines.length);
	free(text);
	return 0;
}

/*
 * range_entry.c: an entry of a range file checked and kept (see
 * range_entry.h), and the descriptions nbdinfo --map prints, with what
 * each says of the bytes it describes.
 */
#include <string.h>

#include "range_entry.h"

/*
 * The end of the disk an extent may reach: its size, or for a map of
 * QEMU's, which rounds a disk up to whole 512-byte sectors, the size so
 * rounded (past 64 bits, as far as they go).
 */
static uint64_t
extent_limit(uint64_t size, int sectors)
{
	if (!sectors || size % 512 == 0)
		return size;
	if (size - size % 512 > UINT64_MAX - 512)
		return UINT64_MAX;
	return size - size % 512 + 512;
}

const char *
range_keep(struct range_reader *rd, struct range_extent *e)
{
	uint64_t limit = extent_limit(rd->size, e->sectors);
	struct range *r = &e->r;

	/*
	 * QEMU maps an empty disk as one empty extent, its only one: a map
	 * that has begun and covers nothing had that.  Of a disk that is not
	 * empty, it stops short.
	 */
	if (e->sectors && rd->whole_disk && rd->covered == 0)
		return "entry after the one empty extent of an empty disk";
	if (r->length == 0 && e->sectors && r->offset == 0 && !rd->whole_disk) {
		rd->whole_disk = 1;
		return NULL;
	}
	if (r->length == 0)
		return "zero length";
	if (e->sectors && r->offset != rd->covered)
		return r->offset > rd->covered ? "gap in the map before this entry" :
		    "entry out of order in the map";
	if (r->offset >= limit)
		return "offset beyond --size";
	if (r->length > limit - r->offset)
		return "range ends beyond --size";
	if (e->sectors) {
		rd->whole_disk = 1;
		rd->covered = r->offset + r->length;
	}
	if (r->offset >= rd->size)
		return NULL;
	if (r->length > rd->size - r->offset)
		r->length = rd->size - r->offset;
	if (e->data && ranges_add(rd->list, r->offset, r->length) == -1)
		return "out of memory";
	return NULL;
}

const char *
range_finish(const struct range_reader *rd)
{
	if (rd->whole_disk && rd->covered < rd->size)
		return "the map stops before the end of the disk";
	return NULL;
}

int
range_ends_line(int last, int c)
{
	return c == '\r' || (c == '\n' && last != '\r');
}

/* What an nbdinfo extent holds: nothing, data, or data of a backing layer. */
enum holds { HOLDS_NOTHING, HOLDS_DATA, HOLDS_BACKING };

struct description {
	const char *text;
	enum nbd_map map;
	uint64_t type;
	enum holds holds;
};

/*
 * The descriptions nbdinfo prints for each type of each map (libnbd's
 * info/map.c), and "backing depth N" for N > 1.  For an overlay, what a
 * backing layer holds is no change: only "local" is.
 */
static const struct description descriptions[] = {
	{ "data", MAP_ALLOCATION, 0, HOLDS_DATA },
	{ "hole", MAP_ALLOCATION, 1, HOLDS_NOTHING },
	{ "zero", MAP_ALLOCATION, 2, HOLDS_NOTHING },
	{ "hole,zero", MAP_ALLOCATION, 3, HOLDS_NOTHING },
	{ "clean", MAP_DIRTY, 0, HOLDS_NOTHING },
	{ "dirty", MAP_DIRTY, 1, HOLDS_DATA },
	{ "absent", MAP_DEPTH, 0, HOLDS_NOTHING },
	{ "local", MAP_DEPTH, 1, HOLDS_DATA },
};

#define BACKING_DEPTH	"backing depth "

/* The description of len bytes at text; returns 0, or -1 if unknown. */
static int
find_description(const char *text, size_t len, struct description *d)
{
	size_t n = sizeof(descriptions) / sizeof(descriptions[0]);
	size_t prefix = strlen(BACKING_DEPTH);
	char *end;

	for (size_t i = 0; i < n; i++) {
		if (strlen(descriptions[i].text) == len &&
		    memcmp(descriptions[i].text, text, len) == 0) {
			*d = descriptions[i];
			return 0;
		}
	}
	if (len <= prefix || memcmp(text, BACKING_DEPTH, prefix) != 0 ||
	    text[prefix] == '0' ||
	    parse_number(text + prefix, &end, &d->type) == -1 ||
	    end != text + len || d->type < 2)
		return -1;
	d->text = BACKING_DEPTH;
	d->map = MAP_DEPTH;
	d->holds = HOLDS_BACKING;
	return 0;
}

const char *
nbdinfo_extent(struct range_reader *rd, uint64_t type, const char *text,
    size_t len, struct range_extent *e)
{
	struct description d;

	if (find_description(text, len, &d) == -1)
		return "unknown nbdinfo description";
	if (d.type != type)
		return "type does not match description";
	if (rd->map != MAP_UNKNOWN && rd->map != d.map)
		return "description from another map";
	if (d.map == MAP_ALLOCATION && rd->overlay)
		return ALLOCATION_OVER_BACKING;
	rd->map = d.map;
	e->data = d.holds == HOLDS_DATA ||
	    (d.holds == HOLDS_BACKING && !rd->overlay);
	e->sectors = 1;
	return NULL;
}

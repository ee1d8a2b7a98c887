/*
 * range_entry.h: an entry of a range file, whatever its format: a range
 * of the disk that holds data or not, checked against the disk and kept
 * in the list if it is data; and what the descriptions of nbdinfo --map
 * mean, which its text and its JSON share.  Used by the two readers,
 * ranges.c (lines) and range_json.c; pure, no I/O.
 */
#ifndef RANGE_ENTRY_H
#define RANGE_ENTRY_H

#include <stddef.h>
#include <stdint.h>

#include "ranges.h"

/*
 * The maps of nbdinfo --map: base:allocation, qemu:dirty-bitmap:NAME and
 * qemu:allocation-depth.
 */
enum nbd_map { MAP_UNKNOWN, MAP_ALLOCATION, MAP_DIRTY, MAP_DEPTH };

/* What reading a range file needs, and where it puts what it finds. */
struct range_reader {
	uint64_t size;			/* of the disk */
	int overlay;			/* the image is an overlay (-b) */
	enum nbd_map map;		/* of the first nbdinfo extent */
	int whole_disk;			/* a map of QEMU's, which covers it all */
	uint64_t covered;		/* its extents reach here, with no gap */
	struct range_list *list;
	struct ranges_error *error;
};

/* An entry of a range file. */
struct range_extent {
	struct range r;
	int data;
	int sectors;	/* from a map of QEMU's, which runs to whole sectors */
};

/*
 * Check that an extent lies inside the disk (for a map of QEMU's, the
 * disk rounded up to whole sectors, and right after the extent before:
 * such a map covers the disk with no gap), cut it at the disk's size, and
 * append it to rd->list if it is data and a byte of it is left.  Returns
 * why not, a short lowercase phrase, or NULL.
 */
const char *range_keep(struct range_reader *rd, struct range_extent *e);

/*
 * At the end of a range file: a map of QEMU's must have reached the end
 * of the disk, or it was cut short.  Returns why not, or NULL.
 */
const char *range_finish(const struct range_reader *rd);

/*
 * A map of where a disk holds data, where an overlay (-b) needs what
 * changed: refused, since the blocks that became zeros are not in it.
 */
#define ALLOCATION_OVER_BACKING "an allocation map says where data is, not what " \
	"changed: over -b give the changed blocks (nbdinfo " \
	"--map=qemu:dirty-bitmap:NAME or --map=qemu:allocation-depth)"

/*
 * Whether an nbdinfo extent of this type and description (len bytes at
 * text) is data; for an overlay, what a backing layer holds is not.  The
 * description must be one nbdinfo prints, agree with the type, and be of
 * the map of the first extent.  Fills e; returns why not, or NULL.
 */
const char *nbdinfo_extent(struct range_reader *rd, uint64_t type,
    const char *text, size_t len, struct range_extent *e);

/*
 * Whether c ends a line, last being the character before it: LF, CR,
 * and CRLF once.
 */
int range_ends_line(int last, int c);

#endif

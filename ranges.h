/*
 * ranges.h: the list of byte ranges of the input that hold data, read from
 * a range file.  Nothing here prints or exits: failures come back as a line
 * number and a reason.  The list itself, and parse_number, are in
 * range_list.h, which comes with this header.
 */
#ifndef RANGES_H
#define RANGES_H

#include <stdint.h>
#include <stdio.h>

#include "range_list.h"

struct ranges_error {
	unsigned long line;	/* 0 when the error is not about one line */
	const char *why;	/* short lowercase phrase */
};

/*
 * How the range file of --map begins: a map of where a disk holds data,
 * refused over a backing file as other allocation maps are, since what
 * became zeros is not in it.
 */
#define RANGES_MAP_HEADER "# data ranges of "
#define RANGES_MAP_OVERLAY "a map of sqcow2 --map says where data is, not " \
	"what changed: over -b give the changed blocks"

/*
 * Why a file of nothing but space is refused for an overlay: what a map
 * command that failed leaves behind (> changed.map) would store no change.
 */
#define RANGES_EMPTY_OVERLAY "empty: over a backing file it would store no " \
	"change (for none, give a file of one comment line)"

/*
 * Append the data ranges of a range file to list, each checked against
 * size (the input's size in bytes).  The file is a list of "OFFSET LENGTH"
 * lines, the output of `nbdinfo --map`, or JSON: that of `qemu-img map
 * --output=json` or `nbdinfo --map --json`, or an array of {"offset": N,
 * "length": N}.  Its content tells which.  The maps of qemu-img and
 * nbdinfo cover the disk, entry after entry from 0 to size, which they
 * may run past to size rounded up to 512; they are cut at size.  A line
 * of a file of lines holds at most 4096 bytes.  overlay is nonzero when
 * the image is an overlay of a backing file (-b): an allocation map, and
 * a file whose first line is RANGES_MAP_HEADER, are then refused, an
 * allocation depth map gives only what is local to the top image, not
 * what lies in a backing layer, and a file of nothing but space is
 * refused.  Returns 0, or -1 with *error filled (error->line
 * 0 for the whole file: a read error, with errno set, or an empty file
 * under overlay).
 * Only ranges_merge sorts and merges.
 */
int ranges_read(FILE *in, uint64_t size, int overlay, struct range_list *list,
    struct ranges_error *error);

#endif

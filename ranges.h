/*
 * ranges.h: the list of byte ranges of the input that hold data, read from
 * a range file.  Nothing here prints or exits: failures come back as a line
 * number and a reason.
 */
#ifndef RANGES_H
#define RANGES_H

#include <stdint.h>
#include <stdio.h>

#include "layout.h"

struct range_list {
	struct range *v;
	size_t n;
	size_t cap;
};

struct ranges_error {
	unsigned long line;	/* 0 when the error is not about one line */
	const char *why;	/* short lowercase phrase */
};

/*
 * Parse a decimal or 0x-hex unsigned number at s.  No sign, no leading
 * space.  On success stores it in *value, points *end past its last digit
 * and returns 0; returns -1 if s does not start with a number or it
 * overflows 64 bits.
 */
int parse_number(const char *s, char **end, uint64_t *value);

/*
 * Append the data ranges of a range file to list, each checked against
 * size (the input's size in bytes).  The file is a list of "OFFSET LENGTH"
 * lines, the output of `nbdinfo --map`, or JSON: that of `qemu-img map
 * --output=json` or `nbdinfo --map --json`, or an array of {"offset": N,
 * "length": N}.  Its content tells which.  The maps of qemu-img and
 * nbdinfo may run to size rounded up to 512, and are cut at size.
 * overlay is nonzero when the image is an overlay of a backing file (-b):
 * an allocation depth map then gives only what is local to the top image,
 * not what lies in a backing layer.  Returns 0, or -1 with *error filled
 * (error->line 0 and errno set for a read error).  Only ranges_merge
 * sorts and merges.
 */
int ranges_read(FILE *in, uint64_t size, int overlay, struct range_list *list,
    struct ranges_error *error);

/* Sort by offset, in place, and merge ranges that overlap or touch. */
void ranges_merge(struct range_list *list);

/* Append one range; returns -1 with errno ENOMEM if the list cannot grow. */
int ranges_add(struct range_list *list, uint64_t offset, uint64_t length);

void ranges_free(struct range_list *list);

#endif

/*
 * range_list.h: a list of byte ranges of the input, grown one range at a
 * time, then sorted and merged in place; and parse_number, the one
 * parser of the numbers in range files and in options.  Pure: nothing
 * here reads, writes, prints or exits.
 */
#ifndef RANGE_LIST_H
#define RANGE_LIST_H

#include <stddef.h>
#include <stdint.h>

/* A byte range of the disk: one that holds data, or reads as zeros. */
struct range {
	uint64_t offset;
	uint64_t length;
};

struct range_list {
	struct range *v;
	size_t n;
	size_t cap;
};

/*
 * Parse a decimal or 0x-hex unsigned number at s.  No sign, no leading
 * space.  On success stores it in *value, points *end past its last digit
 * and returns 0; returns -1 if s does not start with a number or it
 * overflows 64 bits.
 */
int parse_number(const char *s, char **end, uint64_t *value);

/* Append one range; returns -1 with errno ENOMEM if the list cannot grow. */
int ranges_add(struct range_list *list, uint64_t offset, uint64_t length);

/*
 * Sort by offset, in place (a heapsort: no copy of the list, however
 * long), and merge ranges that overlap or touch.
 */
void ranges_merge(struct range_list *list);

/* Free the ranges; the list is then empty and may be added to again. */
void ranges_free(struct range_list *list);

#endif

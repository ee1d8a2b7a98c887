/*
 * range_print.c: the range file of --map and -d --map; see range_print.h.
 */
#include <inttypes.h>
#include <stdio.h>

#include "range_print.h"
#include "ranges.h"

/*
 * A file name in a comment line: bytes that would end the line or hide in
 * a terminal are written as \ooo, so that the range file reads back.
 */
static void
print_name(const char *name)
{
	for (const unsigned char *p = (const unsigned char *)name; *p != '\0'; p++) {
		if (*p < 0x20 || *p == 0x7f || *p == '\\')
			printf("\\%03o", *p);
		else
			putchar(*p);
	}
}

void
print_ranges_header(const char *name, uint64_t size)
{
	fputs(RANGES_MAP_HEADER, stdout);
	print_name(name);
	printf(", %" PRIu64 " bytes: OFFSET LENGTH\n", size);
}

void
print_range(uint64_t offset, uint64_t length)
{
	printf("%" PRIu64 " %" PRIu64 "\n", offset, length);
}

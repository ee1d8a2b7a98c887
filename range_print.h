/*
 * range_print.h: the range file that --map and -d --map print on standard
 * output: a comment line that names the disk and its size, which the
 * range reader knows by RANGES_MAP_HEADER (ranges.h), then one
 * "OFFSET LENGTH" line a range.  The caller flushes stdout at the end.
 */
#ifndef RANGE_PRINT_H
#define RANGE_PRINT_H

#include <stdint.h>

void print_ranges_header(const char *name, uint64_t size);
void print_range(uint64_t offset, uint64_t length);

#endif

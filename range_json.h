/*
 * range_json.h: range files in JSON: the maps of qemu-img map
 * --output=json and nbdinfo --map --json, and plain lists of
 * {"offset": N, "length": N}.  Read a character at a time, so that a
 * listing of millions of entries costs no more memory than its ranges.
 */
#ifndef RANGE_JSON_H
#define RANGE_JSON_H

#include <stdio.h>

#include "range_entry.h"

/*
 * Read the JSON array at in, one format of the three throughout, into
 * rd's list, each entry kept as range_keep keeps it.  rd->error->line
 * counts from 1 at the first character read.  Returns 0, or -1 with
 * rd->error->why set; a read error shows only in ferror(in).
 */
int range_json_read(FILE *in, struct range_reader *rd);

#endif

/*
 * seekable.h: the seekable form of an image (-o FILE), written as the
 * raw disk is read, in the stream order (layout.h): the clusters the
 * sieve keeps appended in guest order after room for the plan's tables,
 * then those tables that the kept clusters need written back at the
 * start of their areas, the rest of the areas left as holes, and the
 * header and the L1 table last.
 */
#ifndef SEEKABLE_H
#define SEEKABLE_H

#include "copier.h"
#include "layout.h"
#include "sieve.h"

/*
 * The seekable form of the clusters of plan that s keeps, into a new
 * regular file, in one pass over the input.  Fills *lo with the layout
 * written.  s must be started (sieve_start).
 */
void write_seekable(struct copier *c, const struct layout *plan, struct sieve *s,
    struct layout *lo);

#endif

/*
 * encode.h: making an image, the driver, as decode.h is the way back:
 * the two ends opened and checked, the ranges read and the image planned
 * (layout.h), the clusters sieved if asked (sieve.h), the image written
 * in the form the output takes (stream.h, seekable.h), and committed.
 */
#ifndef ENCODE_H
#define ENCODE_H

#include "options.h"

/*
 * sqcow2 without -d: the image of the raw disk that opt names, or its
 * size (--print-size), as opt asks.  Returns 0; every failure exits.
 */
int encode(const struct options *opt);

/* --map: the data ranges of the raw disk, as a range file.  Returns 0. */
int map_disk(const struct options *opt);

#endif

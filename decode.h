/*
 * decode.h: sqcow2 -d, a qcow2 image back to the raw disk it holds, the
 * driver, as encode.h is the way there.  decoder.h decides what every
 * byte of the image is; decode.c reads and writes as it says, through a
 * copier.  From a pipe the image is read once, forward; from a file it
 * is read by offset, any layout.
 */
#ifndef DECODE_H
#define DECODE_H

#include "options.h"

/*
 * sqcow2 -d or -t: the raw disk of a qcow2 image, its size (--print-size),
 * its data ranges (--map), or nothing but the proof that all of it
 * decodes (-t), as opt asks.  A regular file reaches the disk's size
 * last of all, so that one that failed never looks complete.  Returns 0;
 * every failure exits.
 */
int decode(const struct options *opt);

#endif

/*
 * sizes.h: a size as users write it, for --size, --cluster-size and
 * --slice: bytes, or a number with a suffix of qemu-img's.  Pure: no
 * I/O, no exit.
 */
#ifndef SIZES_H
#define SIZES_H

#include <stdint.h>

/*
 * A size in bytes, with an optional suffix k, M, G, T, P or E for powers
 * of 1024, also written KiB, MiB...; a decimal fraction such as 1.5G must
 * come to whole bytes; KB, MB, GB... are refused as ambiguous.  Returns
 * NULL with *size set, or why s is no size, a short lowercase phrase.
 */
const char *parse_size(const char *s, uint64_t *size);

#endif

/*
 * util.h: the small arithmetic every part of sqcow2 uses, defined once:
 * rounding, minimum and maximum, sorted arrays, big-endian numbers.
 */
#ifndef UTIL_H
#define UTIL_H

#include <stddef.h>
#include <stdint.h>

/* n rounded up to a multiple of align (not 0); the caller keeps it from overflowing. */
static inline uint64_t
round_up(uint64_t n, uint64_t align)
{
	return (n + align - 1) / align * align;
}

/* n / d rounded up, for any n. */
static inline uint64_t
ceil_div(uint64_t n, uint64_t d)
{
	return n / d + (n % d != 0);
}

static inline uint64_t
min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static inline uint64_t
max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

/* For qsort of uint64_t. */
static inline int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/*
 * The first i in [lo, hi) for which before(array, i, key) is false, or
 * hi: a binary search of a sorted array, before saying whether element
 * i comes before key.
 */
static inline size_t
search_sorted(const void *array, size_t lo, size_t hi, uint64_t key,
    int (*before)(const void *array, size_t i, uint64_t key))
{
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (before(array, mid, key))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static inline int
u64_before(const void *array, size_t i, uint64_t key)
{
	return ((const uint64_t *)array)[i] < key;
}

/* The first of the n sorted values v[] that is at least key; n if none. */
static inline size_t
lower_bound_u64(const uint64_t *v, size_t n, uint64_t key)
{
	return search_sorted(v, 0, n, key, u64_before);
}

/* The unsigned big-endian number in the bytes (at most 8) at p. */
static inline uint64_t
get_be(const unsigned char *p, int bytes)
{
	uint64_t v = 0;

	while (bytes-- > 0)
		v = v << 8 | *p++;
	return v;
}

/* v as bytes big-endian bytes at p. */
static inline void
put_be(unsigned char *p, int bytes, uint64_t v)
{
	while (bytes-- > 0) {
		p[bytes] = (unsigned char)v;
		v >>= 8;
	}
}

#endif

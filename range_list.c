/*
 * range_list.c: the list of ranges (see range_list.h): parse_number,
 * ranges grown into it, and sorted and merged in place.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>

#include "range_list.h"

int
parse_number(const char *s, char **end, uint64_t *value)
{
	unsigned long long v;

	/* strtoull would skip spaces and take a sign: refuse both. */
	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	/* Base 16 only after 0x: base 0 would read a zero-padded 010 as octal. */
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		if (!isxdigit((unsigned char)s[2]))
			return -1;
		v = strtoull(s + 2, end, 16);
	} else {
		v = strtoull(s, end, 10);
	}
	if (errno == ERANGE)
		return -1;
	*value = v;
	return 0;
}

int
ranges_add(struct range_list *list, uint64_t offset, uint64_t length)
{
	if (list->n == list->cap) {
		size_t cap = list->cap ? list->cap * 2 : 64;
		struct range *v;

		if (cap > SIZE_MAX / sizeof(*v) ||
		    (v = realloc(list->v, cap * sizeof(*v))) == NULL) {
			errno = ENOMEM;
			return -1;
		}
		list->v = v;
		list->cap = cap;
	}
	list->v[list->n].offset = offset;
	list->v[list->n].length = length;
	list->n++;
	return 0;
}

void
ranges_free(struct range_list *list)
{
	free(list->v);
	list->v = NULL;
	list->n = list->cap = 0;
}

/* Move v[root] down the max-heap of the first n ranges, by offset. */
static void
sift_down(struct range *v, size_t root, size_t n)
{
	struct range top = v[root];
	size_t child;

	while ((child = 2 * root + 1) < n) {
		if (child + 1 < n && v[child + 1].offset > v[child].offset)
			child++;
		if (v[child].offset <= top.offset)
			break;
		v[root] = v[child];
		root = child;
	}
	v[root] = top;
}

/*
 * Heapsort: in place and O(n log n) at worst.  glibc's qsort allocates a
 * copy of the whole array for a merge sort, which for a million ranges
 * was half as much memory again.
 */
static void
sort_by_offset(struct range *v, size_t n)
{
	for (size_t i = n / 2; i-- > 0;)
		sift_down(v, i, n);
	while (n-- > 1) {
		struct range first = v[0];

		v[0] = v[n];
		v[n] = first;
		sift_down(v, 0, n);
	}
}

void
ranges_merge(struct range_list *list)
{
	size_t kept = 0;

	if (list->n == 0)
		return;
	sort_by_offset(list->v, list->n);
	for (size_t i = 1; i < list->n; i++) {
		struct range *last = &list->v[kept];
		const struct range *r = &list->v[i];
		uint64_t last_end = last->offset + last->length;

		if (r->offset <= last_end) {
			if (r->offset + r->length > last_end)
				last->length = r->offset + r->length - last->offset;
		} else {
			list->v[++kept] = *r;
		}
	}
	list->n = kept + 1;
}

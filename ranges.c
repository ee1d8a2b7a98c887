/*
 * ranges.c: read the list of data ranges.
 */
#define _POSIX_C_SOURCE 200809L

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ranges.h"

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

static const char *
skip_space(const char *s)
{
	while (*s == ' ' || *s == '\t' || *s == '\r')
		s++;
	return s;
}

/* Blank lines and lines that are a comment carry no range. */
static int
is_blank(const char *s)
{
	s = skip_space(s);
	return *s == '\0' || *s == '\n' || *s == '#';
}

/* One "OFFSET LENGTH [# comment]" line; returns the reason it is bad, or NULL. */
static const char *
parse_plain_line(const char *line, uint64_t size, struct range *r)
{
	const char *s = skip_space(line);
	char *end;

	if (parse_number(s, &end, &r->offset) == -1)
		return "bad offset";
	s = skip_space(end);
	if (is_blank(s))
		return "expected OFFSET LENGTH";
	if (s == end)
		return "bad offset";
	if (parse_number(s, &end, &r->length) == -1)
		return "bad length";
	s = skip_space(end);
	if (*s != '\0' && *s != '\n' && *s != '#')
		return "junk after length";
	if (r->length == 0)
		return "zero length";
	if (r->offset >= size)
		return "offset beyond --size";
	if (r->length > size - r->offset)
		return "range ends beyond --size";
	return NULL;
}

int
ranges_read(FILE *in, uint64_t size, struct range_list *list,
    struct ranges_error *error)
{
	char *line = NULL;
	size_t cap = 0;
	unsigned long lineno = 0;
	ssize_t length;
	int status = 0;

	error->line = 0;
	error->why = NULL;
	while ((length = getline(&line, &cap, in)) != -1) {
		struct range r;

		lineno++;
		if (strlen(line) != (size_t)length) {
			error->why = "NUL byte in line";
		} else if (is_blank(line)) {
			continue;
		} else if ((error->why = parse_plain_line(line, size, &r)) == NULL &&
		    ranges_add(list, r.offset, r.length) == -1) {
			error->why = "out of memory";
		}
		if (error->why != NULL) {
			error->line = lineno;
			status = -1;
			break;
		}
	}
	if (status == 0 && ferror(in)) {
		error->why = "read error";
		status = -1;
	}
	free(line);
	return status;
}

static int
by_offset(const void *a, const void *b)
{
	const struct range *x = a, *y = b;

	return (x->offset > y->offset) - (x->offset < y->offset);
}

void
ranges_merge(struct range_list *list)
{
	size_t kept = 0;

	if (list->n == 0)
		return;
	qsort(list->v, list->n, sizeof(*list->v), by_offset);
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

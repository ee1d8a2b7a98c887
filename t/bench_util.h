/*
 * t/bench_util.h: what the codecs' benches (t/bench-*.c) share: a file
 * read whole, its clusters, thread CPU time and medians.  Each includes
 * it once, with BENCH_NAME defined as its name for its messages.
 */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void
die(const char *what)
{
	fprintf(stderr, BENCH_NAME ": %s%s%s\n", what, errno ? ": " : "",
	    errno ? strerror(errno) : "");
	exit(1);
}

static void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		die("out of memory");
	return p;
}

static unsigned char *
read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf = NULL;
	size_t cap = 0, got;

	if (f == NULL)
		die(path);
	*len = 0;
	do {
		if (*len == cap) {
			cap = cap ? 2 * cap : 1 << 20;
			if ((buf = realloc(buf, cap)) == NULL)
				die("out of memory");
		}
		*len += got = fread(buf + *len, 1, cap - *len, f);
	} while (got > 0);
	if (ferror(f))
		die(path);
	fclose(f);
	return buf;
}

static int
all_zero(const unsigned char *p, size_t n)
{
	return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double
median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static size_t
parse_size(const char *s)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (*end == 'k' || *end == 'K')
		v <<= 10, end++;
	else if (*end == 'm' || *end == 'M')
		v <<= 20, end++;
	if (errno != 0 || end == s || *end != '\0' || v < 512 || v > 2u << 20 ||
	    (v & (v - 1)) != 0) {
		errno = 0;
		die("cluster size: a power of two from 512 to 2M");
	}
	return (size_t)v;
}

#endif

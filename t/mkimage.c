/*
 * mkimage.c: a qcow2 image, or any byte range of one, made from the layout
 * alone, for the tests to hand to QEMU and 7-Zip: what layout.c lays out
 * and fills, with nothing of the shell's writers in between.  It walks
 * the host clusters from the first one asked for, filling metadata from
 * a meta writer and data from a run walk, both started there by their
 * seeks, and stops at layout_image_size.
 *
 *	mkimage [-2] [-c BITS] [-b BACKING [-F FORMAT]] [-z ZEROS] [-p PLAN]
 *	    [-s START:END] RAW RANGES > IMAGE
 *
 * RAW is the disk, its size the image's; RANGES and ZEROS are range files
 * of the data and of the clusters that read as zeros.  -p places them
 * within the plan of the ranges of PLAN, as sqcow2 -o does when PLAN is
 * the ranges it reads and RANGES the clusters it keeps: the data at the
 * plan's data offset, the gap before it zeros.  -2 makes version 2, -s
 * writes bytes [START, END) of the image only.  Without -s it is exactly
 * the image that a writer from the start would write.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "layout.h"
#include "meta.h"
#include "ranges.h"

static _Noreturn void fail(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/* Print "mkimage: <message>" and exit 1. */
static _Noreturn void
fail(const char *fmt, ...)
{
	va_list ap;

	fputs("mkimage: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static _Noreturn void
usage(void)
{
	fprintf(stderr, "usage: mkimage [-2] [-c BITS] [-b BACKING [-F FORMAT]] "
	    "[-z ZEROS] [-p PLAN] [-s START:END] RAW RANGES\n");
	exit(2);
}

/* The ranges of a range file, sorted and merged. */
static void
read_ranges(const char *path, uint64_t size, struct range_list *list)
{
	struct ranges_error error;
	FILE *f = fopen(path, "r");

	if (f == NULL)
		fail("%s: %s", path, strerror(errno));
	if (ranges_read(f, size, 0, list, &error) == -1)
		fail("%s line %lu: %s", path, error.line, error.why);
	fclose(f);
	ranges_merge(list);
}

/* len bytes of RAW at offset, zeros past its end. */
static void
read_raw(int fd, unsigned char *buf, size_t len, uint64_t offset)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, buf + done, len - done, (off_t)(offset + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			fail("raw: %s", strerror(errno));
		if (n == 0)
			break;
		done += (size_t)n;
	}
	memset(buf + done, 0, len - done);
}

static void
write_out(const unsigned char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(STDOUT_FILENO, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			fail("stdout: %s", n == 0 ? "no space" : strerror(errno));
		buf += n;
		len -= (size_t)n;
	}
}

int
main(int argc, char **argv)
{
	struct range_list data = { 0 }, zeros = { 0 }, planned = { 0 };
	const char *backing = NULL, *format = NULL, *zeros_path = NULL;
	const char *plan_path = NULL;
	uint64_t start = 0, end = UINT64_MAX, size, cs, data_at, gap_at, h;
	unsigned bits = DEFAULT_CLUSTER_BITS;
	int version = 3, opt, fd;
	enum layout_error error;
	struct meta_writer mw;
	struct run_walk walk;
	struct layout lo, plan;
	struct stat st;
	unsigned char *buf;

	while ((opt = getopt(argc, argv, "2c:b:F:z:p:s:")) != -1) {
		switch (opt) {
		case 'p':
			plan_path = optarg;
			break;
		case '2':
			version = 2;
			break;
		case 'c':
			bits = (unsigned)atoi(optarg);
			break;
		case 'b':
			backing = optarg;
			break;
		case 'F':
			format = optarg;
			break;
		case 'z':
			zeros_path = optarg;
			break;
		case 's':
			if (sscanf(optarg, "%" SCNu64 ":%" SCNu64, &start, &end) != 2 ||
			    start > end)
				usage();
			break;
		default:
			usage();
		}
	}
	if (argc - optind != 2)
		usage();
	if ((fd = open(argv[optind], O_RDONLY)) == -1 || fstat(fd, &st) == -1)
		fail("%s: %s", argv[optind], strerror(errno));
	read_ranges(argv[optind + 1], (uint64_t)st.st_size, &data);
	if (zeros_path != NULL)
		read_ranges(zeros_path, (uint64_t)st.st_size, &zeros);
	if (plan_path != NULL)
		read_ranges(plan_path, (uint64_t)st.st_size, &planned);

	if ((error = layout_init(&lo, (uint64_t)st.st_size, bits, data.v,
	    data.n)) != LAYOUT_OK ||
	    (error = layout_set_zeros(&lo, zeros.v, zeros.n)) != LAYOUT_OK ||
	    (error = layout_set_header(&lo, version, backing, format)) != LAYOUT_OK)
		fail("%s", layout_strerror(error));
	if (plan_path != NULL &&
	    ((error = layout_init(&plan, (uint64_t)st.st_size, bits, planned.v,
	    planned.n)) != LAYOUT_OK || (error = layout_within(&lo, &plan)) != LAYOUT_OK))
		fail("%s", layout_strerror(error));

	cs = lo.cluster_size;
	size = layout_image_size(&lo);
	end = end < size ? end : size;
	data_at = lo.data_offset / cs;
	gap_at = data_at - lo.gap_clusters;
	if ((buf = malloc(cs)) == NULL)
		fail("out of memory");
	h = start / cs;
	meta_writer_init(&mw, &lo);
	meta_writer_seek(&mw, h);
	run_walk_seek(&walk, &lo, h <= data_at ? 0 : h - data_at);
	for (; h * cs < end; h++) {
		uint64_t from = h * cs > start ? h * cs : start;
		uint64_t to = (h + 1) * cs < end ? (h + 1) * cs : end;

		if (h >= data_at && h - data_at < lo.data_clusters) {
			read_raw(fd, buf, cs, walk.first * cs);
			if (++walk.first == walk.end)
				run_next(&walk);
		} else if (h >= gap_at && h < data_at) {
			memset(buf, 0, cs);
		} else if (mw.cluster != h || !meta_writer_next(&mw, buf)) {
			fail("host cluster %" PRIu64 ": the meta writer is at %" PRIu64,
			    h, mw.cluster);
		}
		write_out(buf + (from - h * cs), to - from);
	}
	if (close(STDOUT_FILENO) != 0)
		fail("stdout: %s", strerror(errno));
	free(buf);
	ranges_free(&data);
	ranges_free(&zeros);
	ranges_free(&planned);
	return 0;
}

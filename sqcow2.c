/*
 * sqcow2: turn a raw disk image on standard input into a qcow2 image on
 * standard output, in one forward pass.
 */
#define _GNU_SOURCE

#include <ctype.h>
#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/fs.h>		/* BLKGETSIZE64 */

#include "layout.h"
#include "ranges.h"

#define VERSION		"0.1"
#define IO_SIZE		(1u << 20)	/* large enough to amortise a syscall */

struct options {
	uint64_t size;
	int have_size;
	unsigned cluster_bits;
	const char *ranges_path;
	int print_size;
	int verbose;
	int map;
	const char *map_path;	/* NULL: standard input */
};

/* What the input is: a file or a block device has a size and can seek. */
struct source {
	int seekable;
	uint64_t size;
};

/* Bytes moved between a read descriptor and a write descriptor. */
struct stream {
	int in, out;
	int seekable;		/* holes of the input are skipped by seeking */
	uint64_t in_offset;	/* bytes of input consumed or skipped */
	unsigned char *buffer;
	size_t buffer_size;
	uint64_t bytes_read, bytes_skipped, bytes_written;
};

static void
help(void)
{
	fputs(
"Usage: sqcow2 [OPTION]... < RAW > IMAGE\n"
"       sqcow2 --map [FILE] > RANGES\n"
"Convert the raw disk image on standard input into a qcow2 image on standard\n"
"output, reading and writing each strictly forward.\n"
"\n"
"  -s, --size SIZE          size of the raw disk in bytes; suffixes k, M, G, T, P\n"
"                           are powers of 1024 (default: the size of the file\n"
"                           or block device on standard input)\n"
"  -r, --ranges FILE        the byte ranges of the disk that hold data: lines of\n"
"                           \"OFFSET LENGTH\", or the output of nbdinfo --map or\n"
"                           qemu-img map --output=json (default: the data of\n"
"                           a file on standard input, else all of the disk)\n"
"  -c, --cluster-size SIZE  cluster size, a power of two from 512 to 2M\n"
"                           (default 64k)\n"
"      --print-size         print the exact size of the image in bytes and exit\n"
"                           without reading standard input\n"
"      --map                print the data ranges of FILE (default: standard\n"
"                           input) as a range file and exit\n"
"  -v, --verbose            print what was read, skipped and written at the end\n"
"  -h, --help               print this help and exit\n"
"  -V, --version            print the version and exit\n"
"\n"
"Bytes outside the ranges must be zero: sqcow2 checks them and fails if one\n"
"is not.  Exit status: 0 success, 1 failure, 2 usage error.\n", stdout);
	exit(0);
}

/* A size with an optional k, M, G, T or P suffix (powers of 1024). */
static int
parse_size(const char *s, uint64_t *size)
{
	static const char suffixes[] = "kmgtp";
	const char *suffix;
	char *end;
	unsigned shift;

	if (parse_number(s, &end, size) == -1)
		return -1;
	if (*end == '\0')
		return 0;
	if (end[1] != '\0' || (suffix = strchr(suffixes, tolower((unsigned char)*end))) == NULL)
		return -1;
	shift = 10 * (unsigned)(suffix - suffixes + 1);
	if (*size > UINT64_MAX >> shift)
		return -1;
	*size <<= shift;
	return 0;
}

static unsigned
parse_cluster_size(const char *s)
{
	uint64_t size;
	unsigned bits;

	if (parse_size(s, &size) == -1)
		errx(2, "bad cluster size '%s'", s);
	for (bits = MIN_CLUSTER_BITS; bits <= MAX_CLUSTER_BITS; bits++)
		if (size == UINT64_C(1) << bits)
			return bits;
	errx(2, "cluster size must be a power of two from 512 to 2M, not '%s'", s);
}

static void
parse_options(int argc, char **argv, struct options *opt)
{
	enum { OPT_PRINT_SIZE = 256, OPT_MAP };
	static const struct option longopts[] = {
		{ "size",		required_argument,	NULL, 's' },
		{ "ranges",		required_argument,	NULL, 'r' },
		{ "cluster-size",	required_argument,	NULL, 'c' },
		{ "print-size",		no_argument,		NULL, OPT_PRINT_SIZE },
		{ "map",		no_argument,		NULL, OPT_MAP },
		{ "verbose",		no_argument,		NULL, 'v' },
		{ "help",		no_argument,		NULL, 'h' },
		{ "version",		no_argument,		NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	int ch;

	opt->cluster_bits = DEFAULT_CLUSTER_BITS;
	/* One line of our own for a bad option, rather than getopt's and a usage. */
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":s:r:c:vhV", longopts, NULL)) != -1) {
		switch (ch) {
		case 's':
			if (parse_size(optarg, &opt->size) == -1)
				errx(2, "bad size '%s'", optarg);
			opt->have_size = 1;
			break;
		case 'r':
			opt->ranges_path = optarg;
			break;
		case 'c':
			opt->cluster_bits = parse_cluster_size(optarg);
			break;
		case OPT_PRINT_SIZE:
			opt->print_size = 1;
			break;
		case OPT_MAP:
			opt->map = 1;
			break;
		case 'v':
			opt->verbose = 1;
			break;
		case 'h':
			help();
			break;
		case 'V':
			printf("sqcow2 %s\n", VERSION);
			exit(0);
		case ':':
			errx(2, "option '%s' needs a value", argv[optind - 1]);
		default:
			if (optopt != 0)
				errx(2, "unknown option '-%c'; try 'sqcow2 --help'", optopt);
			errx(2, "unknown option '%s'; try 'sqcow2 --help'", argv[optind - 1]);
		}
	}
	if (opt->map && optind < argc)
		opt->map_path = argv[optind++];
	if (optind != argc)
		errx(2, "unexpected argument '%s'", argv[optind]);
}

/* A regular file or a block device knows its size and can skip holes. */
static void
describe(int fd, const char *name, struct source *src)
{
	struct stat st;

	if (fstat(fd, &st) == -1)
		err(1, "%s", name);
	src->seekable = S_ISREG(st.st_mode) || S_ISBLK(st.st_mode);
	src->size = (uint64_t)st.st_size;
	if (S_ISBLK(st.st_mode) && ioctl(fd, BLKGETSIZE64, &src->size) == -1)
		err(1, "%s", name);
}

/* --size, or the size of the input; the two must agree. */
static uint64_t
input_size(const struct options *opt, const struct source *src)
{
	if (!opt->have_size) {
		if (!src->seekable)
			errx(2, "--size is needed when stdin is not a file or a block device");
		return src->size;
	}
	if (src->seekable && src->size < opt->size)
		errx(1, "input ended at offset %" PRIu64 ", before --size %" PRIu64,
		    src->size, opt->size);
	if (src->seekable && src->size > opt->size)
		errx(1, "input longer than --size %" PRIu64, opt->size);
	return opt->size;
}

/* --map: the data ranges of a file, as a range file. */
static int
print_map(const char *path)
{
	struct range_list ranges = { 0 };
	const char *name = path != NULL ? path : "stdin";
	struct source src;
	int fd = STDIN_FILENO;

	if (path != NULL && (fd = open(path, O_RDONLY)) == -1)
		err(1, "%s", path);
	describe(fd, name, &src);
	if (!src.seekable)
		errx(2, "--map needs a file or a block device, and %s is neither", name);
	if (ranges_from_holes(fd, src.size, &ranges) == -1)
		err(1, "%s", name);
	printf("# data ranges of %s, %" PRIu64 " bytes: OFFSET LENGTH\n", name, src.size);
	for (size_t i = 0; i < ranges.n; i++)
		printf("%" PRIu64 " %" PRIu64 "\n", ranges.v[i].offset, ranges.v[i].length);
	if (fflush(stdout) == EOF || ferror(stdout))
		err(1, "stdout");
	ranges_free(&ranges);
	return 0;
}

/*
 * The ranges of the range file; without one, the data that a file on stdin
 * holds, or else the whole disk.
 */
static void
load_ranges(const struct options *opt, const struct source *src, uint64_t size,
    struct range_list *list)
{
	struct ranges_error error;
	FILE *f;

	if (opt->ranges_path == NULL) {
		if (src->seekable) {
			if (ranges_from_holes(STDIN_FILENO, size, list) == -1)
				err(1, "stdin");
		} else if (size > 0 && ranges_add(list, 0, size) == -1) {
			err(1, "ranges");
		}
		return;
	}
	if ((f = fopen(opt->ranges_path, "r")) == NULL)
		err(1, "%s", opt->ranges_path);
	if (ranges_read(f, size, list, &error) == -1) {
		if (error.line == 0)
			err(1, "%s", opt->ranges_path);
		errx(1, "%s line %lu: %s", opt->ranges_path, error.line, error.why);
	}
	fclose(f);
	ranges_merge(list);
}

/* Read until len bytes or end of input; returns the bytes read. */
static size_t
read_full(struct stream *s, void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = read(s->in, (char *)buf + done, len - done);

		if (n == 0)
			break;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			err(1, "stdin");
		}
		done += (size_t)n;
	}
	s->in_offset += done;
	s->bytes_read += done;
	return done;
}

/* Write all len bytes, or exit: a zero-byte write means the disk is full. */
static void
write_full(struct stream *s, const void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = write(s->out, (const char *)buf + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0)
			errno = ENOSPC;
		if (n <= 0)
			err(1, "stdout");
		done += (size_t)n;
	}
	s->bytes_written += len;
}

/* Read exactly len bytes: input that ends sooner is shorter than --size. */
static void
read_exact(struct stream *s, void *buf, size_t len, uint64_t size)
{
	if (read_full(s, buf, len) != len)
		errx(1, "input ended at offset %" PRIu64 ", before --size %" PRIu64,
		    s->in_offset, size);
}

/* Offset of the first non-zero byte of p[0..len), or len if there is none. */
static size_t
first_nonzero(const unsigned char *p, size_t len)
{
	size_t i;

	/* memcmp against itself shifted is vectorised; the loop runs once. */
	if (len >= 16 && memcmp(p, p + 16, len - 16) == 0) {
		for (i = 0; i < 16 && p[i] == 0; i++)
			;
		return i == 16 ? len : i;
	}
	for (i = 0; i < len && p[i] == 0; i++)
		;
	return i;
}

static void
copy_bytes(struct stream *s, uint64_t len, uint64_t size)
{
	while (len > 0) {
		size_t chunk = len < s->buffer_size ? (size_t)len : s->buffer_size;

		read_exact(s, s->buffer, chunk, size);
		write_full(s, s->buffer, chunk);
		len -= chunk;
	}
}

static void
read_zeros(struct stream *s, uint64_t len, uint64_t size)
{
	while (len > 0) {
		size_t chunk = len < s->buffer_size ? (size_t)len : s->buffer_size;
		size_t nonzero;

		read_exact(s, s->buffer, chunk, size);
		if ((nonzero = first_nonzero(s->buffer, chunk)) != chunk)
			errx(1, "non-zero byte at input offset %" PRIu64
			    ", outside the ranges", s->in_offset - chunk + nonzero);
		len -= chunk;
	}
}

static void
seek_input(struct stream *s, uint64_t offset)
{
	if (lseek(s->in, (off_t)offset, SEEK_SET) == -1)
		err(1, "stdin");
	s->bytes_skipped += offset - s->in_offset;
	s->in_offset = offset;
}

/*
 * Bytes of no stored cluster are dropped, so they had better be zero.
 * Holes of a seekable input are zero by definition and are skipped; only
 * what the file system calls data is read and checked.
 */
static void
skip_zeros(struct stream *s, uint64_t len, uint64_t size)
{
	uint64_t end = s->in_offset + len;

	while (s->seekable && s->in_offset < end) {
		uint64_t data, hole;
		int found = find_data(s->in, s->in_offset, &data, &hole);

		if (found == -1 && (errno == EINVAL || errno == EOPNOTSUPP)) {
			/* Read it all, from where find_data may have left us. */
			s->seekable = 0;
			seek_input(s, s->in_offset);
			break;
		}
		if (found == -1)
			err(1, "stdin");
		if (found == 0 || data >= end) {
			seek_input(s, end);
			return;
		}
		seek_input(s, data);
		read_zeros(s, (hole < end ? hole : end) - data, size);
	}
	read_zeros(s, end - s->in_offset, size);
}

static void
write_zeros(struct stream *s, uint64_t len)
{
	memset(s->buffer, 0, len);
	write_full(s, s->buffer, len);
}

/* Header, tables and refcounts, gathered into large writes. */
static void
write_metadata(struct stream *s, const struct layout *lo)
{
	struct meta_writer mw;
	size_t filled = 0;

	meta_writer_init(&mw, lo);
	while (layout_meta_next(&mw, s->buffer + filled)) {
		filled += lo->cluster_size;
		if (filled + lo->cluster_size > s->buffer_size) {
			write_full(s, s->buffer, filled);
			filled = 0;
		}
	}
	write_full(s, s->buffer, filled);
}

/* The stored clusters in guest order; a partial last cluster is padded. */
static void
write_data(struct stream *s, const struct layout *lo)
{
	uint64_t size = lo->input_size;
	struct run_walk walk;
	unsigned char extra;

	run_walk_init(&walk, lo);
	while (run_next(&walk)) {
		uint64_t start = walk.first << lo->cluster_bits;
		uint64_t end = walk.end << lo->cluster_bits;
		uint64_t input_end = end < size ? end : size;

		skip_zeros(s, start - s->in_offset, size);
		copy_bytes(s, input_end - start, size);
		write_zeros(s, end - input_end);
	}
	skip_zeros(s, size - s->in_offset, size);
	if (read_full(s, &extra, 1) != 0)
		errx(1, "input longer than --size %" PRIu64, size);
}

static void
print_statistics(const struct stream *s, const struct layout *lo)
{
	struct rusage usage;

	if (getrusage(RUSAGE_SELF, &usage) == -1)
		err(1, "getrusage");
	fprintf(stderr, "sqcow2: read %" PRIu64 " bytes, skipped %" PRIu64
	    " by seeking, wrote %" PRIu64 " (%" PRIu64 " data clusters, %" PRIu64
	    " metadata clusters), peak memory %ld KiB\n", s->bytes_read,
	    s->bytes_skipped, s->bytes_written, lo->data_clusters,
	    layout_meta_clusters(lo), usage.ru_maxrss);
}

int
main(int argc, char **argv)
{
	struct options opt = { 0 };
	struct range_list ranges = { 0 };
	struct source src;
	struct layout lo;
	struct stream s = { .in = STDIN_FILENO, .out = STDOUT_FILENO };
	enum layout_error error;
	uint64_t size;

	parse_options(argc, argv, &opt);
	if (opt.map)
		return print_map(opt.map_path);
	/* With all it needs given, --print-size does not look at stdin at all. */
	if (opt.print_size && opt.have_size && opt.ranges_path != NULL)
		src = (struct source){ 0 };
	else
		describe(STDIN_FILENO, "stdin", &src);
	size = input_size(&opt, &src);
	load_ranges(&opt, &src, size, &ranges);
	if ((error = layout_init(&lo, size, opt.cluster_bits, ranges.v,
	    ranges.n)) != LAYOUT_OK)
		errx(1, "%s", layout_strerror(error));
	if (opt.print_size) {
		printf("%" PRIu64 "\n", layout_image_size(&lo));
		if (fflush(stdout) == EOF)
			err(1, "stdout");
		ranges_free(&ranges);
		return 0;
	}
	if (isatty(STDOUT_FILENO))
		errx(2, "refusing to write an image to a terminal");
	/* A closed reader is an error to report, not a silent death. */
	signal(SIGPIPE, SIG_IGN);

	s.seekable = src.seekable;
	s.buffer_size = IO_SIZE > lo.cluster_size ? IO_SIZE : lo.cluster_size;
	if ((s.buffer = malloc(s.buffer_size)) == NULL)
		err(1, "buffer");
	write_metadata(&s, &lo);
	write_data(&s, &lo);
	if (close(STDOUT_FILENO) == -1)
		err(1, "stdout");
	if (opt.verbose)
		print_statistics(&s, &lo);
	free(s.buffer);
	ranges_free(&ranges);
	return 0;
}

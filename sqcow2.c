/*
 * sqcow2: turn a raw disk image on standard input into a qcow2 image on
 * standard output, in one forward pass.
 */
#define _GNU_SOURCE

#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <ctype.h>
#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <linux/fs.h>		/* BLKGETSIZE64 */

#include "layout.h"
#include "ranges.h"

#define VERSION		"0.1"
#define IO_SIZE		(1u << 20)	/* large enough to amortise a syscall */
#define KERNEL_CHUNK	(1u << 30)	/* most one copy_file_range or splice asks */
#define PIPE_SIZE	(1 << 20)	/* the default pipe-max-size */
#define RESERVE_STEP	(UINT64_C(64) << 20)	/* -o: fallocate this far ahead */

/* What the input is called in messages: stdin, or the FILE of --input. */
static const char *input_name = "stdin";

struct options {
	const char *input_path;		/* NULL: stdin */
	uint64_t size;
	int have_size;
	const char *ranges_path;	/* NULL: found, or all of the disk */
	int sparsify;
	unsigned cluster_bits;
	int version;			/* of the qcow2 image: 2 or 3 */
	const char *backing_file;
	const char *backing_format;
	const char *output_path;	/* NULL: stdout */
	int fsync;
	int print_size;
	int map;
	const char *map_path;		/* NULL: stdin */
	int progress;
	int fake_console;		/* tests reach the console form of -p */
	int verbose;
};

/* What the input is: a file or a block device has a size and can seek. */
struct source {
	int seekable;
	int regular;
	uint64_t size;
};

/* Bytes moved between a read descriptor and a write descriptor. */
struct stream {
	int in, out;
	const char *out_name;
	int seekable;		/* the input can skip by seeking */
	int seek_data;		/* and find its holes with SEEK_DATA */
	int check_zeros;	/* dropped bytes must be zero: no backing file */
	uint64_t in_offset;	/* bytes of input consumed or skipped */
	unsigned char *buffer;	/* what is on its way out */
	size_t buffer_size;
	size_t filled;		/* bytes of buffer not yet written */
	unsigned char *scratch;	/* bytes read only to be checked for zeros */
	int use_copy_range;	/* copy_file_range(2) between two regular files */
	int use_splice;		/* splice(2) where one side is a pipe */
	int use_fallocate;	/* a regular file: reserve blocks ahead */
	uint64_t out_offset;	/* where the next write lands */
	uint64_t reserved;	/* blocks of output reserved up to here */
	uint64_t bytes_read, bytes_skipped, bytes_written;
};

/*
 * -p: progress on stderr.  On a console one line is rewritten in place;
 * elsewhere, as in a log, each update is a line of its own.
 */
static struct {
	int on;
	int console;
	int showing;		/* a console line waits for its newline */
	int width;		/* of the line showing, to blank what it leaves */
	uint64_t total;		/* bytes of input */
	struct timespec start, last;
} progress;

#define PROGRESS_CONSOLE_INTERVAL	0.2	/* seconds */
#define PROGRESS_LINE_INTERVAL		1.0

static void
end_progress_line(void)
{
	if (progress.showing)
		fputc('\n', stderr);
	progress.showing = 0;
}

/* err(3) and errx(3), once a progress line showing has been ended. */
static _Noreturn void die(int status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static _Noreturn void diex(int status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
die(int status, const char *fmt, ...)
{
	int saved_errno = errno;
	va_list ap;

	end_progress_line();
	errno = saved_errno;
	va_start(ap, fmt);
	verr(status, fmt, ap);
}

static void
diex(int status, const char *fmt, ...)
{
	va_list ap;

	end_progress_line();
	va_start(ap, fmt);
	verrx(status, fmt, ap);
}

static _Noreturn void
input_ended(uint64_t offset, uint64_t size)
{
	diex(1, "input ended at offset %" PRIu64 ", before --size %" PRIu64, offset, size);
}

static double
seconds_since(const struct timespec *then, const struct timespec *now)
{
	return (double)(now->tv_sec - then->tv_sec) +
	    (double)(now->tv_nsec - then->tv_nsec) / 1e9;
}

static void
progress_start(uint64_t total, int console)
{
	progress.on = 1;
	progress.console = console;
	progress.total = total;
	clock_gettime(CLOCK_MONOTONIC, &progress.start);
	progress.last = progress.start;
}

/* Report done bytes of input, if it is time to, or if final. */
static void
progress_update(uint64_t done, int final)
{
	struct timespec now;
	double elapsed, percent, rate;
	unsigned long whole;
	char line[128];
	int width;

	if (!progress.on)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (!final && seconds_since(&progress.last, &now) <
	    (progress.console ? PROGRESS_CONSOLE_INTERVAL : PROGRESS_LINE_INTERVAL))
		return;
	progress.last = now;
	elapsed = seconds_since(&progress.start, &now);
	percent = progress.total > 0 ? 100.0 * (double)done / (double)progress.total : 100.0;
	rate = elapsed > 0 ? (double)done / elapsed / 1048576.0 : 0.0;
	whole = (unsigned long)elapsed;
	width = snprintf(line, sizeof(line), "sqcow2: %5.1f%% of %.1f MiB, %.1f MiB/s, %lu:%02lu",
	    percent, (double)progress.total / 1048576.0, rate, whole / 60, whole % 60);
	if (progress.console) {
		fprintf(stderr, "\r%-*s", progress.width, line);
		progress.width = width;
		progress.showing = 1;
		if (final)
			end_progress_line();
	} else {
		fprintf(stderr, "%s\n", line);
	}
	fflush(stderr);
}

static void
help(void)
{
	fputs(
"Usage: sqcow2 [OPTION]... [-i RAW | < RAW] > IMAGE\n"
"       sqcow2 [OPTION]... -o IMAGE < RAW\n"
"       sqcow2 --map [FILE] > RANGES\n"
"Convert the raw disk image on standard input into a qcow2 image on standard\n"
"output in one forward pass: both may be pipes.\n"
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
"  -b, --backing FILE       write an overlay of the backing file FILE: only the\n"
"                           ranges are stored, all else reads from FILE, and\n"
"                           bytes outside the ranges need not be zero; the\n"
"                           name is written as given and FILE is not opened\n"
"  -F, --backing-format FMT the format of the backing file (raw, qcow2, ...)\n"
"      --compat VERSION     1.1 (qcow2 version 3, the default) or 0.10 (version 2)\n"
"  -i, --input FILE         read the raw disk from FILE instead of stdin\n"
"      --sparsify           read a file or block device once first, and store\n"
"                           none of the clusters that hold only zeros\n"
"  -o, --output FILE        write the image to FILE (default: stdout); data\n"
"                           clusters that are all zeros are then not stored,\n"
"                           and FILE appears only once it is complete\n"
"      --fsync              make the image durable before exiting\n"
"      --print-size         print the exact size of the image in bytes and exit;\n"
"                           only --sparsify and finding ranges read stdin\n"
"      --map                print the data ranges of FILE (default: standard\n"
"                           input) as a range file and exit\n"
"  -p, --progress           show progress on stderr: percent, rate, time\n"
"  -v, --verbose            print what was read, skipped and written at the end\n"
"  -h, --help               print this help and exit\n"
"  -V, --version            print the version and exit\n"
"\n"
"Bytes outside the ranges must be zero: sqcow2 checks them and fails if one\n"
"is not.  Exit status: 0 success, 1 failure, 2 usage error.\n", stdout);
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
		diex(2, "bad cluster size '%s'", s);
	for (bits = MIN_CLUSTER_BITS; bits <= MAX_CLUSTER_BITS; bits++)
		if (size == UINT64_C(1) << bits)
			return bits;
	diex(2, "cluster size must be a power of two from 512 to 2M, not '%s'", s);
}

/* What getopt_long refused, in one line of ours. */
static _Noreturn void
bad_option(const char *arg)
{
	const char *equals = strchr(arg, '=');

	if (strncmp(arg, "--", 2) != 0)
		diex(2, "unknown option '-%c'; try 'sqcow2 --help'", optopt);
	/* optopt names a known option given a value it does not take. */
	if (equals != NULL && optopt != 0)
		diex(2, "option '%.*s' takes no value", (int)(equals - arg), arg);
	diex(2, "unknown option '%s'; try 'sqcow2 --help'", arg);
}

/* Standard output, checked: help and version to a full disk fail too. */
static _Noreturn void
exit_flushed(void)
{
	if (fflush(stdout) == EOF || ferror(stdout))
		die(1, "stdout");
	exit(0);
}

static void
parse_options(int argc, char **argv, struct options *opt)
{
	enum {
		OPT_PRINT_SIZE = 256, OPT_MAP, OPT_FSYNC, OPT_COMPAT,
		OPT_FAKE_CONSOLE, OPT_SPARSIFY
	};
	static const struct option longopts[] = {
		{ "size",		required_argument,	NULL, 's' },
		{ "ranges",		required_argument,	NULL, 'r' },
		{ "cluster-size",	required_argument,	NULL, 'c' },
		{ "print-size",		no_argument,		NULL, OPT_PRINT_SIZE },
		{ "map",		no_argument,		NULL, OPT_MAP },
		{ "output",		required_argument,	NULL, 'o' },
		{ "input",		required_argument,	NULL, 'i' },
		{ "sparsify",		no_argument,		NULL, OPT_SPARSIFY },
		{ "fsync",		no_argument,		NULL, OPT_FSYNC },
		{ "backing",		required_argument,	NULL, 'b' },
		{ "backing-format",	required_argument,	NULL, 'F' },
		{ "compat",		required_argument,	NULL, OPT_COMPAT },
		{ "progress",		no_argument,		NULL, 'p' },
		{ "fake-stderr-is-console", no_argument,	NULL, OPT_FAKE_CONSOLE },
		{ "verbose",		no_argument,		NULL, 'v' },
		{ "help",		no_argument,		NULL, 'h' },
		{ "version",		no_argument,		NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	int ch;

	opt->cluster_bits = DEFAULT_CLUSTER_BITS;
	opt->version = 3;
	/* One line of our own for a bad option, rather than getopt's and a usage. */
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":s:r:c:o:i:b:F:pvhV", longopts, NULL)) != -1) {
		switch (ch) {
		case 's':
			if (parse_size(optarg, &opt->size) == -1)
				diex(2, "bad size '%s'", optarg);
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
		case 'o':
			opt->output_path = strcmp(optarg, "-") == 0 ? NULL : optarg;
			break;
		case OPT_FSYNC:
			opt->fsync = 1;
			break;
		case 'i':
			opt->input_path = optarg;
			break;
		case OPT_SPARSIFY:
			opt->sparsify = 1;
			break;
		case 'b':
			opt->backing_file = optarg;
			break;
		case 'F':
			opt->backing_format = optarg;
			break;
		case OPT_COMPAT:
			if (strcmp(optarg, "1.1") == 0)
				opt->version = 3;
			else if (strcmp(optarg, "0.10") == 0)
				opt->version = 2;
			else
				diex(2, "--compat must be 1.1 or 0.10, not '%s'", optarg);
			break;
		case 'p':
			opt->progress = 1;
			break;
		case OPT_FAKE_CONSOLE:
			opt->fake_console = 1;
			break;
		case 'v':
			opt->verbose = 1;
			break;
		case 'h':
			help();
			exit_flushed();
		case 'V':
			printf("sqcow2 %s\n", VERSION);
			exit_flushed();
		case ':':
			diex(2, "option '%s' needs a value", argv[optind - 1]);
		default:
			bad_option(argv[optind - 1]);
		}
	}
	if (opt->map && optind < argc)
		opt->map_path = argv[optind++];
	if (optind != argc)
		diex(2, "unexpected argument '%s'", argv[optind]);
	if (opt->backing_format != NULL && opt->backing_file == NULL)
		diex(2, "--backing-format needs --backing");
	/* Holes of the new disk would read from the backing file, not as zeros. */
	if (opt->backing_file != NULL && opt->ranges_path == NULL)
		diex(2, "--backing needs --ranges, the blocks that changed");
	if (opt->sparsify && opt->backing_file != NULL)
		diex(2, "--sparsify drops clusters of zeros, which over --backing hide data");
}

/*
 * SQCOW2_DISABLE lists fast paths to leave unused ("splice copy_file_range
 * seek_data pipe_size fallocate"), so that the tests can reach every
 * fallback.
 */
static int
disabled(const char *fast_path)
{
	const char *list = getenv("SQCOW2_DISABLE");

	return list != NULL && strstr(list, fast_path) != NULL;
}

/* A regular file or a block device knows its size and can skip holes. */
static void
describe(int fd, const char *name, struct source *src)
{
	struct stat st;

	if (fstat(fd, &st) == -1)
		die(1, "%s", name);
	src->seekable = S_ISREG(st.st_mode) || S_ISBLK(st.st_mode);
	src->regular = S_ISREG(st.st_mode);
	src->size = (uint64_t)st.st_size;
	if (S_ISBLK(st.st_mode) && ioctl(fd, BLKGETSIZE64, &src->size) == -1)
		die(1, "%s", name);
}

/* --size, or the size of the input; the two must agree. */
static uint64_t
input_size(const struct options *opt, const struct source *src)
{
	if (!opt->have_size) {
		if (!src->seekable)
			diex(2, "--size is needed when stdin is not a file or a block device");
		return src->size;
	}
	if (src->seekable && src->size < opt->size)
		input_ended(src->size, opt->size);
	if (src->seekable && src->size > opt->size)
		diex(1, "input longer than --size %" PRIu64, opt->size);
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
		die(1, "%s", path);
	describe(fd, name, &src);
	if (!src.seekable)
		diex(2, "--map needs a file or a block device, and %s is neither", name);
	if (ranges_from_holes(fd, src.size, &ranges) == -1)
		die(1, "%s", name);
	printf("# data ranges of %s, %" PRIu64 " bytes: OFFSET LENGTH\n", name, src.size);
	for (size_t i = 0; i < ranges.n; i++)
		printf("%" PRIu64 " %" PRIu64 "\n", ranges.v[i].offset, ranges.v[i].length);
	if (fflush(stdout) == EOF || ferror(stdout))
		die(1, "stdout");
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
		if (src->seekable && !disabled("seek_data")) {
			if (ranges_from_holes(STDIN_FILENO, size, list) == -1)
				die(1, "%s", input_name);
		} else if (size > 0 && ranges_add(list, 0, size) == -1) {
			die(1, "ranges");
		}
		return;
	}
	if ((f = fopen(opt->ranges_path, "r")) == NULL)
		die(1, "%s", opt->ranges_path);
	if (ranges_read(f, size, opt->backing_file != NULL, list, &error) == -1) {
		if (error.line == 0)
			die(1, "%s", opt->ranges_path);
		diex(1, "%s line %lu: %s", opt->ranges_path, error.line, error.why);
	}
	fclose(f);
	ranges_merge(list);
}

/*
 * Whether a failed call should be made again: after EINTR, and after
 * EAGAIN on a descriptor that whoever started us left non-blocking, once
 * poll says it is ready for events.
 */
static int
again(int fd, short events)
{
	struct pollfd ready = { .fd = fd, .events = events };

	if (errno == EINTR)
		return 1;
	if (errno != EAGAIN)
		return 0;
	while (poll(&ready, 1, -1) == -1 && errno == EINTR)
		;
	return 1;
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
			if (again(s->in, POLLIN))
				continue;
			die(1, "%s", input_name);
		}
		done += (size_t)n;
	}
	s->in_offset += done;
	s->bytes_read += done;
	progress_update(s->in_offset, 0);
	return done;
}

/* Write all len bytes, or exit: a zero-byte write means the disk is full. */
static void
write_full(struct stream *s, const void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = write(s->out, (const char *)buf + done, len - done);

		if (n < 0 && again(s->out, POLLOUT))
			continue;
		if (n == 0)
			errno = ENOSPC;
		if (n <= 0)
			die(1, "%s", s->out_name);
		done += (size_t)n;
	}
	s->bytes_written += len;
	s->out_offset += len;
}

/*
 * Reserve the output's blocks up to end before writing them: ext4 then
 * allocates large extents instead of a page at a time, a third less time
 * here.  When end is exact, a full disk is an error, and an early one;
 * a guess ahead that does not fit, or a file system without fallocate,
 * only stops the reserving.
 */
static void
reserve(struct stream *s, uint64_t end, int exact)
{
	if (!s->use_fallocate || end <= s->reserved)
		return;
	if (fallocate(s->out, 0, (off_t)s->reserved, (off_t)(end - s->reserved)) == -1) {
		if (exact && (errno == ENOSPC || errno == EDQUOT || errno == EFBIG))
			die(1, "%s", s->out_name);
		s->use_fallocate = 0;
		return;
	}
	s->reserved = end;
}

/* Read exactly len bytes: input that ends sooner is shorter than --size. */
static void
read_exact(struct stream *s, void *buf, size_t len, uint64_t size)
{
	if (read_full(s, buf, len) != len)
		input_ended(s->in_offset, size);
}

/* Offset of the first non-zero byte of p[0..len), or len if there is none. */
static size_t
first_nonzero(const unsigned char *p, size_t len)
{
	size_t i;

	/* memcmp against itself shifted is vectorised; the loops see 16 bytes. */
	if (len >= 16 && memcmp(p, p + 16, len - 16) == 0) {
		for (i = 0; i < 16 && p[i] == 0; i++)
			;
		return i == 16 ? len : i;
	}
	for (i = 0; i < len && p[i] == 0; i++)
		;
	return i;
}

/* Whether a failed copy_file_range or splice only means "not here". */
static int
refused(int error)
{
	return error == EINVAL || error == ENOSYS || error == EXDEV ||
	    error == EOPNOTSUPP || error == EBADF;
}

/*
 * Move up to len bytes from input to output in the kernel.  Returns the
 * bytes moved, 0 at the end of input, or -1 when the kernel refuses (and
 * the slow path should take over).  EINTR is retried.
 */
static ssize_t
copy_in_kernel(struct stream *s, size_t len)
{
	ssize_t n;

	for (;;) {
		if (s->use_copy_range)
			n = copy_file_range(s->in, NULL, s->out, NULL, len, 0);
		else
			n = splice(s->in, NULL, s->out, NULL, len, SPLICE_F_MOVE | SPLICE_F_MORE);
		if (n >= 0 || (errno != EINTR && errno != EAGAIN))
			break;
		/* Either side may be the one not ready. */
		if (errno == EAGAIN) {
			again(s->in, POLLIN);
			errno = EAGAIN;
			again(s->out, POLLOUT);
		}
	}
	if (n < 0 && refused(errno)) {
		s->use_copy_range = s->use_splice = 0;
		return -1;
	}
	if (n < 0) {
		/* Which side failed shows only in errno. */
		if (errno == EPIPE || errno == ENOSPC || errno == EDQUOT || errno == EFBIG)
			die(1, "%s", s->out_name);
		die(1, "%s", input_name);
	}
	return n;
}

static void
copy_bytes(struct stream *s, uint64_t len, uint64_t size)
{
	while (len > 0 && (s->use_copy_range || s->use_splice)) {
		ssize_t n = copy_in_kernel(s, len < KERNEL_CHUNK ? (size_t)len : KERNEL_CHUNK);

		if (n == 0)
			input_ended(s->in_offset, size);
		if (n < 0)
			break;
		s->in_offset += (uint64_t)n;
		s->bytes_read += (uint64_t)n;
		s->bytes_written += (uint64_t)n;
		s->out_offset += (uint64_t)n;
		len -= (uint64_t)n;
		progress_update(s->in_offset, 0);
	}
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
		size_t chunk = len < IO_SIZE ? (size_t)len : IO_SIZE;
		size_t nonzero;

		read_exact(s, s->scratch, chunk, size);
		if ((nonzero = first_nonzero(s->scratch, chunk)) != chunk)
			diex(1, "non-zero byte at input offset %" PRIu64
			    ", outside the ranges", s->in_offset - chunk + nonzero);
		len -= chunk;
	}
}

static void
seek_input(struct stream *s, uint64_t offset)
{
	if (lseek(s->in, (off_t)offset, SEEK_SET) == -1)
		die(1, "%s", input_name);
	s->bytes_skipped += offset - s->in_offset;
	s->in_offset = offset;
	progress_update(s->in_offset, 0);
}

/*
 * The next data at or after the input's offset, by SEEK_DATA: 1 with
 * *data and *hole set, 0 if only holes follow.  A file system that cannot
 * tell gives -1 and turns SEEK_DATA off, the offset put back, so that the
 * caller reads instead.
 */
static int
next_data(struct stream *s, uint64_t *data, uint64_t *hole)
{
	int found = find_data(s->in, s->in_offset, data, hole);

	if (found == -1) {
		if (errno != EINVAL && errno != EOPNOTSUPP)
			die(1, "%s", input_name);
		s->seek_data = 0;
		seek_input(s, s->in_offset);
	}
	return found;
}

/* Get past len bytes of input that nobody needs: seek, or read them. */
static void
discard(struct stream *s, uint64_t len, uint64_t size)
{
	if (s->seekable) {
		seek_input(s, s->in_offset + len);
		return;
	}
	while (len > 0) {
		size_t chunk = len < IO_SIZE ? (size_t)len : IO_SIZE;

		read_exact(s, s->scratch, chunk, size);
		len -= chunk;
	}
}

/*
 * Bytes of no stored cluster.  Over a backing file they are unchanged
 * data that the backing file holds, and are only got past.  Otherwise
 * they are dropped, so they had better be zero: holes of a seekable input
 * are zero by definition and are skipped, and only what the file system
 * calls data is read and checked.
 */
static void
skip_unstored(struct stream *s, uint64_t len, uint64_t size)
{
	uint64_t end = s->in_offset + len;

	if (!s->check_zeros) {
		discard(s, len, size);
		return;
	}
	while (s->seek_data && s->in_offset < end) {
		uint64_t data, hole;
		int found = next_data(s, &data, &hole);

		if (found == -1)
			break;
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

static void
flush_buffer(struct stream *s)
{
	reserve(s, s->out_offset + s->filled, 1);
	write_full(s, s->buffer, s->filled);
	s->filled = 0;
}

/* The rest of the metadata clusters, gathered into large writes. */
static void
write_metadata(struct stream *s, struct meta_writer *mw, size_t cluster_size)
{
	while (layout_meta_next(mw, s->buffer + s->filled)) {
		s->filled += cluster_size;
		if (s->filled + cluster_size > s->buffer_size)
			flush_buffer(s);
	}
	flush_buffer(s);
}

/* The input ends with zeros, or holes, up to size, and there. */
static void
finish_input(struct stream *s, uint64_t size)
{
	unsigned char extra;

	skip_unstored(s, size - s->in_offset, size);
	if (read_full(s, &extra, 1) != 0)
		diex(1, "input longer than --size %" PRIu64, size);
}

/*
 * The stream form: metadata first, then the stored clusters in guest
 * order; a partial last cluster is padded.
 */
static void
write_stream(struct stream *s, const struct layout *lo)
{
	uint64_t size = lo->input_size;
	struct meta_writer mw;
	struct run_walk walk;

	/* The exact size is known: all of it at once. */
	reserve(s, s->out_offset + layout_image_size(lo), 1);
	meta_writer_init(&mw, lo);
	write_metadata(s, &mw, lo->cluster_size);
	run_walk_init(&walk, lo);
	while (run_next(&walk)) {
		uint64_t start = walk.first << lo->cluster_bits;
		uint64_t end = walk.end << lo->cluster_bits;
		uint64_t input_end = end < size ? end : size;

		skip_unstored(s, start - s->in_offset, size);
		copy_bytes(s, input_end - start, size);
		write_zeros(s, end - input_end);
	}
	finish_input(s, size);
}

/* Add guest cluster `cluster` to the ranges stored, clipped to the input. */
static void
note_stored(struct range_list *stored, uint64_t cluster, const struct layout *lo)
{
	uint64_t offset = cluster << lo->cluster_bits;
	uint64_t left = lo->input_size - offset;
	uint64_t length = left < lo->cluster_size ? left : lo->cluster_size;
	struct range *last = stored->n > 0 ? &stored->v[stored->n - 1] : NULL;

	if (last != NULL && last->offset + last->length == offset)
		last->length += length;
	else if (ranges_add(stored, offset, length) == -1)
		die(1, "stored clusters");
}

/*
 * If the input's next cluster lies in a hole, skip to the first cluster
 * that may hold data (holes are zeros, which are dropped) but not past
 * end, and return 1.
 */
static int
skip_hole(struct stream *s, const struct layout *lo, uint64_t *first, uint64_t end)
{
	uint64_t data, hole, next;
	int found;

	if (!s->seek_data || (found = next_data(s, &data, &hole)) == -1)
		return 0;
	next = found == 0 ? end : data >> lo->cluster_bits;
	/* find_data moved the offset: put it back, or where the data is. */
	if (next <= *first) {
		seek_input(s, s->in_offset);
		return 0;
	}
	*first = next < end ? next : end;
	next = *first << lo->cluster_bits;
	seek_input(s, next < lo->input_size ? next : lo->input_size);
	return 1;
}

/*
 * Guest clusters [first, end) into the output buffer, less those that are
 * all zeros.  They are read straight into the buffer, and a kept cluster
 * moves down only once a dropped one has left a gap before it.
 */
static void
copy_nonzero(struct stream *s, const struct layout *lo, uint64_t first,
    uint64_t end, struct range_list *stored)
{
	size_t cs = lo->cluster_size;

	while (first < end) {
		uint64_t room = (s->buffer_size - s->filled) / cs;
		uint64_t clusters = end - first < room ? end - first : room;
		unsigned char *chunk = s->buffer + s->filled;
		size_t bytes = clusters * cs;
		uint64_t left = lo->input_size - s->in_offset;
		size_t from_input = left < bytes ? (size_t)left : bytes;

		if (clusters == 0) {
			/* In steps: the final size is known only to be at most the plan's. */
			uint64_t ahead = s->out_offset + RESERVE_STEP;

			reserve(s, ahead < layout_image_size(lo) ? ahead : layout_image_size(lo), 0);
			flush_buffer(s);
			continue;
		}
		if (skip_hole(s, lo, &first, end))
			continue;
		read_exact(s, chunk, from_input, lo->input_size);
		memset(chunk + from_input, 0, bytes - from_input);
		for (uint64_t i = 0; i < clusters; i++) {
			unsigned char *cluster = chunk + i * cs;

			if (first_nonzero(cluster, cs) == cs)
				continue;
			if (cluster != s->buffer + s->filled)
				memmove(s->buffer + s->filled, cluster, cs);
			s->filled += cs;
			note_stored(stored, first + i, lo);
		}
		first += clusters;
	}
}

/*
 * The seekable form: the clusters of plan that hold a non-zero byte are
 * appended after a gap left for the header, then the tables that map them,
 * and last the header.  Every write but that one goes forward.  Fills
 * *lo with the layout written.
 */
static void
write_sparse(struct stream *s, const struct layout *plan, struct layout *lo,
    struct range_list *stored)
{
	uint64_t size = plan->input_size;
	enum layout_error error;
	struct meta_writer mw;
	struct run_walk walk;
	unsigned char *header;
	off_t stored_end;
	uint64_t end;

	if (lseek(s->out, (off_t)plan->cluster_size, SEEK_SET) == -1)
		die(1, "%s", s->out_name);
	s->out_offset = s->reserved = plan->cluster_size;
	run_walk_init(&walk, plan);
	while (run_next(&walk)) {
		skip_unstored(s, (walk.first << plan->cluster_bits) - s->in_offset, size);
		copy_nonzero(s, plan, walk.first, walk.end, stored);
	}
	finish_input(s, size);
	flush_buffer(s);
	stored_end = lseek(s->out, 0, SEEK_CUR);

	/* A subset of the plan's clusters: it fits wherever the plan did. */
	if ((error = layout_init(lo, size, plan->cluster_bits, stored->v,
	    stored->n)) != LAYOUT_OK ||
	    (error = layout_set_header(lo, plan->version, plan->backing_file,
	    plan->backing_format)) != LAYOUT_OK)
		diex(1, "%s", layout_strerror(error));
	layout_data_first(lo);
	if (stored_end != (off_t)lo->l2_offset)
		diex(1, "internal error: %jd bytes of data, layout says %" PRIu64,
		    (intmax_t)stored_end, lo->l2_offset);
	if ((header = malloc(lo->cluster_size)) == NULL)
		die(1, "header");
	meta_writer_init(&mw, lo);
	layout_meta_next(&mw, header);
	write_metadata(s, &mw, lo->cluster_size);
	end = s->out_offset;
	if (lseek(s->out, 0, SEEK_SET) == -1)
		die(1, "%s", s->out_name);
	write_full(s, header, lo->cluster_size);
	free(header);
	/* Give back what was reserved past the end. */
	if (s->reserved > end && ftruncate(s->out, (off_t)end) == -1)
		die(1, "%s", s->out_name);
}

/*
 * The temporary file that -o writes until it is complete: removed on any
 * exit or fatal signal before it is renamed into place.
 */
static char *temp_path;

static void
remove_temp(void)
{
	if (temp_path != NULL)
		unlink(temp_path);
}

static void
remove_temp_and_die(int sig)
{
	remove_temp();
	signal(sig, SIG_DFL);
	raise(sig);
}

static const int fatal_signals[] = { SIGHUP, SIGINT, SIGQUIT, SIGTERM };

/* Hold the fatal signals while temp_path changes, so none sees it half-made. */
static void
hold_signals(int how)
{
	sigset_t set;

	sigemptyset(&set);
	for (size_t i = 0; i < sizeof(fatal_signals) / sizeof(*fatal_signals); i++)
		sigaddset(&set, fatal_signals[i]);
	sigprocmask(how, &set, NULL);
}

/* Remove the temporary file on a fatal signal; one ignored (nohup) stays so. */
static void
catch_fatal_signals(void)
{
	struct sigaction action = { .sa_handler = remove_temp_and_die }, old;

	sigemptyset(&action.sa_mask);
	for (size_t i = 0; i < sizeof(fatal_signals) / sizeof(*fatal_signals); i++)
		if (sigaction(fatal_signals[i], NULL, &old) == 0 && old.sa_handler != SIG_IGN)
			sigaction(fatal_signals[i], &action, NULL);
}

/* Where the image goes, and whether it can be written out of order. */
struct output {
	int fd;
	const char *name;
	int seekable;		/* a new regular file: the seekable form */
};

/*
 * Standard output, or a device or FIFO named by -o, is written in the
 * stream form, in place.  Any other FILE is made anew as a temporary file
 * beside it.
 */
static void
open_output(const char *path, struct output *out)
{
	struct stat st;
	mode_t mask;
	char *name;

	out->name = path != NULL ? path : "stdout";
	out->seekable = 0;
	if (path == NULL) {
		out->fd = STDOUT_FILENO;
	} else if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
		if ((out->fd = open(path, O_WRONLY)) == -1)
			die(1, "%s", path);
	} else {
		if ((name = malloc(strlen(path) + sizeof(".sqcow2-XXXXXX"))) == NULL)
			die(1, "%s", path);
		sprintf(name, "%s.sqcow2-XXXXXX", path);
		hold_signals(SIG_BLOCK);
		if ((out->fd = mkstemp(name)) == -1)
			die(1, "%s", path);
		temp_path = name;
		atexit(remove_temp);
		catch_fatal_signals();
		hold_signals(SIG_UNBLOCK);
		/* mkstemp makes it 0600; the image gets what a new file would. */
		mask = umask(0);
		umask(mask);
		if (fchmod(out->fd, 0666 & ~mask) == -1)
			die(1, "%s", temp_path);
		out->seekable = 1;
	}
	if (isatty(out->fd))
		diex(2, "refusing to write an image to a terminal");
}

static void
sync_directory_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir;
	int fd;

	if ((dir = slash == NULL ? strdup(".") : strndup(path, (size_t)(slash - path) + 1)) == NULL)
		die(1, "%s", path);
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY)) == -1 || fsync(fd) == -1)
		die(1, "%s", dir);
	close(fd);
	free(dir);
}

/* Close, and for a temporary file rename it over FILE; durable: fsync both. */
static void
commit_output(struct output *out, int durable)
{
	char *name = temp_path;

	/* A pipe or a socket cannot be synced, and has nothing to make durable. */
	if (durable && fsync(out->fd) == -1 && errno != EINVAL)
		die(1, "%s", out->name);
	if (close(out->fd) == -1)
		die(1, "%s", out->name);
	if (temp_path == NULL)
		return;
	hold_signals(SIG_BLOCK);
	if (rename(temp_path, out->name) == -1)
		die(1, "%s", out->name);
	temp_path = NULL;
	hold_signals(SIG_UNBLOCK);
	free(name);
	if (durable)
		sync_directory_of(out->name);
}

/* Read len bytes at offset, or fewer only where the input ends. */
static size_t
pread_full(int fd, void *buf, size_t len, uint64_t offset)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done, (off_t)(offset + done));

		if (n == 0)
			break;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die(1, "%s", input_name);
		done += (size_t)n;
	}
	return done;
}

/*
 * --sparsify: a first pass over the clusters that plan stores.  Holes are
 * skipped; of the rest only clusters with a non-zero byte go into kept.
 * The input is left at offset 0 for the pass that writes.
 */
static void
sparsify(struct stream *s, const struct layout *plan, struct range_list *kept)
{
	uint64_t cs = plan->cluster_size, size = plan->input_size;
	struct run_walk walk;

	run_walk_init(&walk, plan);
	while (run_next(&walk)) {
		uint64_t cluster = walk.first;

		while (cluster < walk.end) {
			uint64_t offset = cluster << plan->cluster_bits, data, hole;
			uint64_t clusters = walk.end - cluster, bytes;

			if (s->seek_data) {
				int found = find_data(s->in, offset, &data, &hole);

				/* The rest of the input is a hole: zeros, dropped. */
				if (found == 0)
					break;
				if (found == 1 && data >= offset + cs) {
					cluster = data >> plan->cluster_bits;
					continue;
				}
			}
			if (clusters > s->buffer_size / cs)
				clusters = s->buffer_size / cs;
			bytes = clusters * cs < size - offset ? clusters * cs : size - offset;
			if (pread_full(s->in, s->buffer, bytes, offset) != bytes)
				diex(1, "%s changed size while being read", input_name);
			s->bytes_read += bytes;
			memset(s->buffer + bytes, 0, clusters * cs - bytes);
			for (uint64_t i = 0; i < clusters; i++)
				if (first_nonzero(s->buffer + i * cs, cs) != cs)
					note_stored(kept, cluster + i, plan);
			cluster += clusters;
		}
	}
	if (lseek(s->in, 0, SEEK_SET) == -1)
		die(1, "%s", input_name);
}

static int
is_kind(int fd, mode_t kind)
{
	struct stat st;

	return fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == kind;
}

/*
 * Data moves in the kernel where it can: copy_file_range between regular
 * files, splice where a pipe is on either side.  A refusal at the first
 * call falls back to read and write.
 */
static void
choose_copy(struct stream *s, const struct source *src)
{
	int in_pipe = is_kind(s->in, S_IFIFO), out_pipe = is_kind(s->out, S_IFIFO);

	s->use_copy_range = src->regular && is_kind(s->out, S_IFREG) &&
	    !disabled("copy_file_range");
	s->use_splice = (in_pipe || out_pipe) && !disabled("splice");
	/*
	 * fallocate moves the end of the file, and appending (>>) writes
	 * there, so an appended image reserves nothing.  Otherwise the writes
	 * start where the file's offset stands.
	 */
	s->use_fallocate = is_kind(s->out, S_IFREG) && !disabled("fallocate") &&
	    !(fcntl(s->out, F_GETFL) & O_APPEND);
	if (s->use_fallocate) {
		off_t start = lseek(s->out, 0, SEEK_CUR);

		s->out_offset = s->reserved = start > 0 ? (uint64_t)start : 0;
	}
	/* Larger pipes, fewer and larger moves; failure costs only speed. */
	if (disabled("pipe_size"))
		return;
	if (in_pipe)
		(void)fcntl(s->in, F_SETPIPE_SZ, PIPE_SIZE);
	if (out_pipe)
		(void)fcntl(s->out, F_SETPIPE_SZ, PIPE_SIZE);
}

static void
print_statistics(const struct stream *s, const struct layout *lo)
{
	struct rusage usage;

	if (getrusage(RUSAGE_SELF, &usage) == -1)
		die(1, "getrusage");
	fprintf(stderr, "sqcow2: read %" PRIu64 " bytes, skipped %" PRIu64
	    " by seeking, wrote %" PRIu64 " (%" PRIu64 " data clusters, %" PRIu64
	    " metadata clusters), peak memory %ld KiB\n", s->bytes_read,
	    s->bytes_skipped, s->bytes_written, lo->data_clusters,
	    layout_meta_clusters(lo), usage.ru_maxrss);
}

/* --input FILE takes the place of stdin. */
static void
open_input(const char *path)
{
	int fd;

	if (path == NULL)
		return;
	if ((fd = open(path, O_RDONLY)) == -1)
		die(1, "%s", path);
	/* With stdin closed, open gave it descriptor 0 already. */
	if (fd != STDIN_FILENO) {
		if (dup2(fd, STDIN_FILENO) == -1)
			die(1, "%s", path);
		close(fd);
	}
	input_name = path;
}

/* The layout of ranges, with the header the options ask for. */
static void
plan_image(struct layout *plan, const struct options *opt, uint64_t size,
    const struct range_list *ranges)
{
	enum layout_error error;

	if ((error = layout_init(plan, size, opt->cluster_bits, ranges->v,
	    ranges->n)) != LAYOUT_OK)
		diex(1, "%s", layout_strerror(error));
	/* Only the options make the header: what is wrong there is usage. */
	if ((error = layout_set_header(plan, opt->version, opt->backing_file,
	    opt->backing_format)) != LAYOUT_OK)
		diex(2, "%s", layout_strerror(error));
}

int
main(int argc, char **argv)
{
	struct options opt = { 0 };
	struct range_list ranges = { 0 }, stored = { 0 };
	struct source src;
	struct output out;
	struct layout plan, written;
	struct stream s = { .in = STDIN_FILENO };
	uint64_t size;

	parse_options(argc, argv, &opt);
	if (opt.map)
		return print_map(opt.map_path);
	open_input(opt.input_path);
	/* With all it needs given, --print-size does not look at stdin at all. */
	if (opt.print_size && opt.have_size && opt.ranges_path != NULL && !opt.sparsify)
		src = (struct source){ 0 };
	else
		describe(STDIN_FILENO, input_name, &src);
	/* The disk is the whole file, wherever whoever opened it left it. */
	if (src.seekable && lseek(STDIN_FILENO, 0, SEEK_SET) == -1)
		die(1, "%s", input_name);
	size = input_size(&opt, &src);
	load_ranges(&opt, &src, size, &ranges);
	plan_image(&plan, &opt, size, &ranges);

	s.seekable = src.seekable;
	s.seek_data = src.seekable && !disabled("seek_data");
	s.check_zeros = opt.backing_file == NULL;
	s.buffer_size = IO_SIZE > plan.cluster_size ? IO_SIZE : plan.cluster_size;
	if ((s.buffer = malloc(s.buffer_size)) == NULL ||
	    (s.scratch = malloc(IO_SIZE)) == NULL)
		die(1, "buffer");
	if (opt.sparsify) {
		struct range_list kept = { 0 };

		if (!src.seekable)
			diex(2, "--sparsify reads the input twice, and %s is not a file or "
			    "a block device (-o FILE drops zeros from a stream)", input_name);
		sparsify(&s, &plan, &kept);
		ranges_free(&ranges);
		ranges = kept;
		plan_image(&plan, &opt, size, &ranges);
	}
	if (opt.print_size) {
		printf("%" PRIu64 "\n", layout_image_size(&plan));
		if (fflush(stdout) == EOF)
			die(1, "stdout");
		free(s.buffer);
		free(s.scratch);
		ranges_free(&ranges);
		return 0;
	}
	open_output(opt.output_path, &out);
	/* A closed reader, or a file past ulimit -f, is an error to report. */
	signal(SIGPIPE, SIG_IGN);
	signal(SIGXFSZ, SIG_IGN);

	s.out = out.fd;
	s.out_name = out.name;
	choose_copy(&s, &src);
	if (opt.progress)
		progress_start(size, opt.fake_console || isatty(STDERR_FILENO));
	/* Over a backing file a cluster of zeros is data: it hides the backing one. */
	if (out.seekable && opt.backing_file == NULL) {
		write_sparse(&s, &plan, &written, &stored);
	} else {
		write_stream(&s, &plan);
		written = plan;
	}
	commit_output(&out, opt.fsync);
	progress_update(s.in_offset, 1);
	if (opt.verbose)
		print_statistics(&s, &written);
	free(s.buffer);
	free(s.scratch);
	ranges_free(&stored);
	ranges_free(&ranges);
	return 0;
}

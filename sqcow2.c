/*
 * sqcow2: turn a raw disk image on standard input into a qcow2 image on
 * standard output, in one forward pass.  This file holds the options and
 * main; io.c and output.c move the bytes, encode.c writes the image forms,
 * and layout.c computes where everything goes.
 */
#define _GNU_SOURCE

#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backing.h"
#include "decode.h"
#include "encode.h"
#include "io.h"
#include "layout.h"
#include "ranges.h"
#include "sizes.h"

#define VERSION		"1.0.0"

struct options {
	const char *input_path;		/* NULL: stdin; -i, or the argument */
	uint64_t size;
	int have_size;
	const char *ranges_path;	/* NULL: found, or all of the disk */
	int sparsify;			/* 1 --sparsify, 0 --no-sparsify, -1 not said */
	const char *diff_path;		/* --diff: the previous disk, raw or qcow2 */
	unsigned cluster_bits;
	int version;			/* of the qcow2 image: 2 or 3 */
	const char *backing_file;
	const char *backing_format;
	int unsafe_backing;		/* -u: the backing file is not looked at */
	int raw_format;			/* -f raw: a disk, whatever its first bytes */
	const char *output_path;	/* NULL: stdout */
	int fsync;
	int print_size;
	int have_expect_size;		/* --expect-size: the image must be so long */
	uint64_t expect_size;
	int map;
	int progress;
	int verbose;
	int slice;			/* --slice: bytes [slice_start, slice_end) */
	uint64_t slice_start, slice_end;
	int decode;			/* -d: a qcow2 image back to the raw disk */
	int test;			/* -t: decode it, write nothing */
	const char *encoding_option;	/* the first option given that -d has no use for */
};

static void
help(void)
{
	fputs(
"Usage: sqcow2 [OPTION]... [RAW] > IMAGE\n"
"       sqcow2 [OPTION]... -o IMAGE [RAW]\n"
"       sqcow2 --map [RAW] > RANGES\n"
"       sqcow2 -d [-pv] [--print-size | --map] [-o RAW] [IMAGE] > RAW\n"
"       sqcow2 -t [-v] [IMAGE]\n"
"Convert the raw disk image RAW, or standard input (RAW - or none), into a\n"
"qcow2 image on standard output in one forward pass: both may be pipes.\n"
"With -d, turn a qcow2 IMAGE back into the raw disk, from a pipe too.\n"
"\n"
"  -d, --decode             read a qcow2 image and write the raw disk it holds;\n"
"                           --print-size and --map then tell the disk's size\n"
"                           and its data ranges\n"
"  -t, --test               decode IMAGE whole and write nothing: exit 0 only if\n"
"                           every byte of its disk reads back\n"
"  -s, --size SIZE          size of the raw disk in bytes, or with a suffix k,\n"
"                           M, G, T, P or E (powers of 1024; 1.5G and 20GiB are\n"
"                           read too); default: the size of a file or block\n"
"                           device\n"
"  -r, --ranges FILE        the byte ranges of the disk that hold data: lines of\n"
"                           \"OFFSET LENGTH\", or the output of nbdinfo --map or\n"
"                           qemu-img map --output=json (default: the data of\n"
"                           a file or block device, else all of the disk)\n"
"  -c, --cluster-size SIZE  cluster size, a power of two from 512 to 2M\n"
"                           (default 64k)\n"
"  -f, --format FMT         the input's format: raw, the only one (say it for a\n"
"                           disk that starts as a qcow2 image does, which is\n"
"                           refused otherwise); with -d, qcow2\n"
"  -b, --backing FILE       write an overlay of the backing file FILE: only the\n"
"                           ranges (or with --diff, the changes) are stored,\n"
"                           all else reads from FILE; the name is written as\n"
"                           given, and must name a file of format FMT from\n"
"                           the image's directory when sqcow2 can see it\n"
"  -F, --backing-format FMT the format of the backing file: raw, qcow2, ...\n"
"  -u, --unsafe             do not look at the backing file: one that will\n"
"                           exist only where the image goes\n"
"      --compat VERSION     1.1 (qcow2 version 3, default) or 0.10 (version 2)\n"
"  -i, --input RAW          read the raw disk from RAW, as the argument does\n"
"      --sparsify           read the disk once first, and store none of the\n"
"                           clusters that hold only zeros: the default for a\n"
"                           file or block device (a --slice of one must say)\n"
"      --no-sparsify        store them, and read the disk once\n"
"      --diff BASE          an overlay of the clusters that differ from those of\n"
"                           BASE, the previous disk: raw, or the qcow2 image\n"
"                           -b names\n"
"", stdout);
	fputs(
"  -o, --output FILE        write the image to FILE (default: stdout); data\n"
"                           clusters that are all zeros are then not stored\n"
"                           (but with --no-sparsify), and FILE appears only\n"
"                           once it is complete\n"
"      --fsync              make the image durable before exiting\n"
"      --print-size         print the exact size of the image in bytes and exit\n"
"                           (reading the disk to sparsify it, as the run would)\n"
"      --expect-size SIZE   fail before writing unless the image (whole, of\n"
"                           which --slice is a part) is SIZE bytes\n"
"      --slice START:END    write bytes [START, END) of the stream form alone\n"
"                           (of a file: with --sparsify or --no-sparsify)\n"
"      --map                print the data ranges of RAW, a file or a block\n"
"                           device, as a range file and exit\n"
"  -p, --progress           show progress on stderr: percent, rate of bytes\n"
"                           read, time taken and time left, pass by pass\n"
"  -v, --verbose            print what was read, skipped and written at the end\n"
"  -h, --help               print this help and exit\n"
"  -V, --version            print the version and exit\n"
"\n"
"Bytes outside the ranges must be zero: sqcow2 checks them and fails if one\n"
"is not.  Exit status: 0 success, 1 failure, 2 usage error.\n", stdout);
}

enum {
	OPT_PRINT_SIZE = 256, OPT_MAP, OPT_FSYNC, OPT_COMPAT, OPT_SLICE,
	OPT_NO_SPARSIFY, OPT_DIFF, OPT_SPARSIFY, OPT_EXPECT_SIZE
};

static const struct option longopts[] = {
	{ "decode",		no_argument,		NULL, 'd' },
	{ "test",		no_argument,		NULL, 't' },
	{ "size",		required_argument,	NULL, 's' },
	{ "ranges",		required_argument,	NULL, 'r' },
	{ "cluster-size",	required_argument,	NULL, 'c' },
	{ "format",		required_argument,	NULL, 'f' },
	{ "print-size",		no_argument,		NULL, OPT_PRINT_SIZE },
	{ "expect-size",	required_argument,	NULL, OPT_EXPECT_SIZE },
	{ "map",		no_argument,		NULL, OPT_MAP },
	{ "output",		required_argument,	NULL, 'o' },
	{ "input",		required_argument,	NULL, 'i' },
	{ "sparsify",		no_argument,		NULL, OPT_SPARSIFY },
	{ "slice",		required_argument,	NULL, OPT_SLICE },
	{ "no-sparsify",	no_argument,		NULL, OPT_NO_SPARSIFY },
	{ "diff",		required_argument,	NULL, OPT_DIFF },
	{ "fsync",		no_argument,		NULL, OPT_FSYNC },
	{ "backing",		required_argument,	NULL, 'b' },
	{ "backing-format",	required_argument,	NULL, 'F' },
	{ "unsafe",		no_argument,		NULL, 'u' },
	{ "compat",		required_argument,	NULL, OPT_COMPAT },
	{ "progress",		no_argument,		NULL, 'p' },
	{ "verbose",		no_argument,		NULL, 'v' },
	{ "help",		no_argument,		NULL, 'h' },
	{ "version",		no_argument,		NULL, 'V' },
	{ NULL, 0, NULL, 0 }
};

/* The options that make sense only when making an image. */
static int
is_encoding_option(int ch)
{
	return (ch < 256 && strchr("srcbFu", ch) != NULL) || ch == OPT_COMPAT ||
	    ch == OPT_SPARSIFY || ch == OPT_SLICE || ch == OPT_NO_SPARSIFY ||
	    ch == OPT_DIFF || ch == OPT_EXPECT_SIZE;
}

/*
 * -c SIZE.  gzip's -c writes to stdout: one who types sqcow2 -c disk.raw
 * meant that, and is told what -c is here.
 */
static unsigned
parse_cluster_size(const char *s)
{
	uint64_t size = 0;

	if (parse_size(s, &size) == NULL)
		for (unsigned bits = MIN_CLUSTER_BITS; bits <= MAX_CLUSTER_BITS; bits++)
			if (size == UINT64_C(1) << bits)
				return bits;
	if (strchr(s, '.') != NULL || strchr(s, '/') != NULL || access(s, F_OK) == 0)
		diex(2, "-c is the cluster size, not '%s'; the image goes to stdout, "
		    "or to -o FILE", s);
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

/* --slice START:END, either left out for the start or the end. */
static void
parse_slice(const char *arg, struct options *opt)
{
	const char *colon = strchr(arg, ':');
	char bound[64];
	const char *why;

	if (colon == NULL || (size_t)(colon - arg) >= sizeof(bound))
		diex(2, "--slice takes START:END, either left out, not '%s'", arg);
	memcpy(bound, arg, (size_t)(colon - arg));
	bound[colon - arg] = '\0';
	opt->slice = 1;
	opt->slice_start = 0;
	opt->slice_end = UINT64_MAX;
	if (bound[0] != '\0' && (why = parse_size(bound, &opt->slice_start)) != NULL)
		diex(2, "bad --slice start '%s': %s", bound, why);
	if (colon[1] != '\0' && (why = parse_size(colon + 1, &opt->slice_end)) != NULL)
		diex(2, "bad --slice end '%s': %s", colon + 1, why);
	if (opt->slice_start > opt->slice_end)
		diex(2, "--slice ends before it starts: '%s'", arg);
}

/* The first option given that makes sense only when making an image. */
static void
note_encoding(struct options *opt, int ch)
{
	for (const struct option *o = longopts; o->name != NULL &&
	    opt->encoding_option == NULL; o++)
		if (o->val == ch)
			opt->encoding_option = o->name;
}

/* The raw disk, named once, by -i or as the argument; "-" is stdin. */
static void
set_input(struct options *opt, const char *path)
{
	if (*path == '\0')
		diex(2, "the input needs a file name, not ''");
	if (opt->input_path != NULL)
		diex(2, "the input is given twice: '%s' and '%s'",
		    opt->input_path, path);
	opt->input_path = path;
}

static _Noreturn void
exit_flushed(void)
{
	flush_stdout();
	exit(0);
}

/* A file name an option needs: an unset shell variable is none. */
static const char *
file_name(const char *option, const char *name)
{
	if (*name == '\0')
		diex(2, "--%s needs a file name, not ''", option);
	return name;
}

static uint64_t
size_of_option(const char *option, const char *arg)
{
	uint64_t size;
	const char *why;

	if ((why = parse_size(arg, &size)) != NULL)
		diex(2, "bad %s '%s': %s", option, arg, why);
	return size;
}

/* The options that take a value. */
static void
parse_value(int ch, const char *arg, struct options *opt)
{
	switch (ch) {
	case 's':
		opt->size = size_of_option("size", arg);
		opt->have_size = 1;
		break;
	case 'r':
		opt->ranges_path = file_name("ranges", arg);
		break;
	case 'c':
		opt->cluster_bits = parse_cluster_size(arg);
		break;
	case 'f':
		opt->raw_format = strcmp(arg, "raw") == 0;
		if (!opt->raw_format && strcmp(arg, "qcow2") != 0)
			diex(2, "-f %s: sqcow2 reads raw disks, and with -d qcow2 images", arg);
		break;
	case 'o':
		opt->output_path = strcmp(file_name("output", arg), "-") == 0 ? NULL : arg;
		break;
	case 'i':
		set_input(opt, arg);
		break;
	case 'b':
		opt->backing_file = file_name("backing", arg);
		break;
	case 'F':
		if (*arg == '\0')
			diex(2, "--backing-format needs a format name, not ''");
		if (!is_qemu_format(arg))
			diex(2, "--backing-format '%s' is no format QEMU opens (raw, qcow2, "
			    "vmdk, ...)", arg);
		opt->backing_format = arg;
		break;
	case OPT_SLICE:
		parse_slice(arg, opt);
		break;
	case OPT_EXPECT_SIZE:
		opt->expect_size = size_of_option("--expect-size", arg);
		opt->have_expect_size = 1;
		break;
	case OPT_DIFF:
		if (*arg == '\0' || strcmp(arg, "-") == 0)
			diex(2, "--diff needs the previous disk's file, not '%s'", arg);
		opt->diff_path = arg;
		break;
	case OPT_COMPAT:
		if (strcmp(arg, "1.1") != 0 && strcmp(arg, "0.10") != 0)
			diex(2, "--compat must be 1.1 or 0.10, not '%s'", arg);
		opt->version = strcmp(arg, "1.1") == 0 ? 3 : 2;
		break;
	}
}

/* One option as getopt_long gives it. */
static void
parse_option(int ch, char **argv, struct options *opt)
{
	switch (ch) {
	case 'd': opt->decode = 1; break;
	case 't': opt->test = opt->decode = 1; break;
	case 'u': opt->unsafe_backing = 1; break;
	case OPT_PRINT_SIZE: opt->print_size = 1; break;
	case OPT_MAP: opt->map = 1; break;
	case OPT_FSYNC: opt->fsync = 1; break;
	case OPT_SPARSIFY: opt->sparsify = 1; break;
	case OPT_NO_SPARSIFY: opt->sparsify = 0; break;
	case 'p': opt->progress = 1; break;
	case 'v': opt->verbose = 1; break;
	case 'h':
		help();
		exit_flushed();
	case 'V':
		printf("sqcow2 %s\n", VERSION);
		exit_flushed();
	case ':':
		diex(2, "option '%s' needs a value", argv[optind - 1]);
	case '?':
		bad_option(argv[optind - 1]);
	default:
		parse_value(ch, optarg, opt);
	}
}

/* What -d and -t take, and what they do not. */
static void
check_decoding(const struct options *opt)
{
	if (opt->encoding_option != NULL)
		diex(2, "--%s is for making an image, not for -d", opt->encoding_option);
	if (opt->raw_format)
		diex(2, "-d reads a qcow2 image: -f raw is for making one");
	if (opt->test && (opt->output_path != NULL || opt->print_size || opt->map))
		diex(2, "-t writes nothing: --%s does not go with it",
		    opt->output_path != NULL ? "output" : opt->print_size ?
		    "print-size" : "map");
}

/* The options that must come together, or not at all. */
static void
check_encoding(const struct options *opt)
{
	if (opt->map && (opt->encoding_option != NULL || opt->output_path != NULL ||
	    opt->print_size))
		diex(2, "--map prints the data ranges of a disk on stdout: --%s does "
		    "not go with it", opt->output_path != NULL ? "output" :
		    opt->print_size ? "print-size" : opt->encoding_option);
	if (opt->backing_format != NULL && opt->backing_file == NULL)
		diex(2, "--backing-format needs --backing");
	if (opt->unsafe_backing && opt->backing_file == NULL)
		diex(2, "--unsafe needs --backing");
	/* Holes of the new disk would read from the backing file, not as zeros. */
	if (opt->backing_file != NULL && opt->ranges_path == NULL && opt->diff_path == NULL)
		diex(2, "--backing needs --ranges, the blocks that changed, or --diff");
	/* The backing image is the previous disk's, which --diff must name. */
	if (opt->diff_path != NULL && opt->backing_file == NULL)
		diex(2, "--diff needs --backing, the image of the previous disk");
	if (opt->slice && opt->output_path != NULL)
		diex(2, "--slice makes a part of the stream form for a stream; a file "
		    "given by -o can be written whole");
	if (opt->have_expect_size && opt->output_path != NULL)
		diex(2, "--expect-size is the size of the stream form, which -o does "
		    "not write (its image is that size or smaller)");
}

static void
parse_options(int argc, char **argv, struct options *opt)
{
	int ch;

	opt->cluster_bits = DEFAULT_CLUSTER_BITS;
	opt->sparsify = -1;
	opt->version = 3;
	/* One line of our own for a bad option, rather than getopt's and a usage. */
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":dts:r:c:f:o:i:b:F:upvhV", longopts,
	    NULL)) != -1) {
		if (is_encoding_option(ch))
			note_encoding(opt, ch);
		parse_option(ch, argv, opt);
	}
	if (optind < argc)
		set_input(opt, argv[optind++]);
	/* gzip and qemu-img convert name their output after the input. */
	if (optind != argc)
		diex(2, "unexpected argument '%s': one %s at most%s", argv[optind],
		    opt->decode ? "image" : "raw disk", opt->decode ?
		    "; the disk goes to stdout, or to -o FILE" :
		    "; the image goes to stdout, or to -o FILE");
	if (opt->decode)
		check_decoding(opt);
	else
		check_encoding(opt);
}

/* --size, or the size of the input; the two must agree. */
static uint64_t
disk_size(const struct options *opt, const struct io *in)
{
	int seekable = io_seekable(in);

	if (!opt->have_size) {
		if (!seekable)
			diex(2, "--size is needed when %s is not a file or a block device",
			    in->name);
		return in->size;
	}
	if (seekable && in->size < opt->size)
		diex(1, "input ended at offset %" PRIu64 ", before --size %" PRIu64,
		    in->size, opt->size);
	if (seekable && in->size > opt->size)
		diex(1, "input longer than --size %" PRIu64, opt->size);
	return opt->size;
}

/* --map: the data ranges of a file, as a range file. */
static void
print_map(const char *path, int raw_format)
{
	struct range_list ranges = { 0 };
	struct io in;

	open_input(path, &in);
	if (!io_seekable(&in))
		diex(2, "--map needs a file or a block device, and %s is neither", in.name);
	if (!raw_format)
		refuse_image_input(&in, "-d --map");
	data_ranges(&in, in.size, &ranges);
	print_map_header(in.name, in.size);
	for (size_t i = 0; i < ranges.n; i++)
		printf("%" PRIu64 " %" PRIu64 "\n", ranges.v[i].offset, ranges.v[i].length);
	flush_stdout();
	ranges_free(&ranges);
}

/*
 * The ranges of the range file; without one, the data that a file on the
 * input holds, or else the whole disk.
 */
static void
load_ranges(const struct options *opt, struct io *in, const struct io *out,
    uint64_t size, struct range_list *list)
{
	struct ranges_error error;
	FILE *f;

	if (opt->ranges_path == NULL) {
		if (io_seekable(in))
			data_ranges(in, size, list);
		else if (size > 0 && ranges_add(list, 0, size) == -1)
			die(1, "ranges");
		return;
	}
	refuse_closed(opt->ranges_path);
	if ((f = fopen(opt->ranges_path, "r")) == NULL)
		die(1, "%s", opt->ranges_path);
	/* A range file the shell has just emptied for the image (> r) lists nothing. */
	if (is_output(fileno(f), out))
		diex(1, "%s: the range file is the output file", opt->ranges_path);
	if (ranges_read(f, size, opt->backing_file != NULL, list, &error) == -1) {
		if (ferror(f))
			die(1, "%s", opt->ranges_path);
		if (error.line == 0)
			diex(1, "%s: %s", opt->ranges_path, error.why);
		diex(1, "%s line %lu: %s", opt->ranges_path, error.line, error.why);
	}
	fclose(f);
	ranges_merge(list);
}

/* For a size whose L1 table is too large: the cluster size that fits it. */
static const char *
cluster_size_that_fits(uint64_t size)
{
	static char advice[64];
	struct layout lo;

	for (unsigned bits = MIN_CLUSTER_BITS; bits <= MAX_CLUSTER_BITS; bits++) {
		if (layout_init(&lo, size, bits, NULL, 0) == LAYOUT_L1_TOO_LARGE)
			continue;
		snprintf(advice, sizeof(advice), "-c %u%s or more makes it fit",
		    bits >= 20 ? 1u << (bits - 20) : 1u << (bits - 10), bits >= 20 ? "M" : "k");
		return advice;
	}
	return "no cluster size does: QEMU opens at most 2 EiB, at -c 2M";
}

/* The layout of ranges, with the header the options ask for. */
static void
plan_image(struct layout *plan, const struct options *opt, uint64_t size,
    const struct range_list *ranges)
{
	enum layout_error error;

	if ((error = layout_init(plan, size, opt->cluster_bits, ranges->v,
	    ranges->n)) == LAYOUT_L1_TOO_LARGE)
		diex(1, "%s: %s", layout_strerror(error), cluster_size_that_fits(size));
	if (error != LAYOUT_OK)
		diex(1, "%s", layout_strerror(error));
	/* Only the options make the header: what is wrong there is usage. */
	if ((error = layout_set_header(plan, opt->version, opt->backing_file,
	    opt->backing_format)) != LAYOUT_OK)
		diex(2, "%s", layout_strerror(error));
}

static void
print_statistics(const struct copier *c, const struct layout *lo)
{
	fprintf(stderr, "sqcow2: read %" PRIu64 " bytes, skipped %" PRIu64
	    " by seeking, wrote %" PRIu64 " (the image: %" PRIu64 " data clusters, %"
	    PRIu64 " metadata clusters), peak memory %ld KiB\n", c->bytes_read,
	    c->bytes_skipped, c->bytes_written, lo->data_clusters,
	    layout_meta_clusters(lo), peak_memory_kib());
}

/*
 * With all it needs given, --print-size does not look at the input: the
 * size and the ranges are known, and nothing is to be sparsified.
 */
static int
needs_input(const struct options *opt)
{
	struct stat st;

	if (!opt->print_size || !opt->have_size || opt->ranges_path == NULL ||
	    opt->sparsify == 1 || opt->diff_path != NULL || opt->input_path != NULL)
		return 1;
	/* Not said: a file on stdin is sparsified by the run this size is for. */
	return opt->sparsify == -1 && fstat(STDIN_FILENO, &st) == 0 &&
	    (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)) && isatty(STDIN_FILENO) == 0 &&
	    !stdin_was_closed();
}


/* A slice ends where the image does; one that starts past it is wrong. */
static void
clip_slice(struct options *opt, uint64_t image_size)
{
	if (opt->slice_start > image_size)
		diex(1, "--slice starts at %" PRIu64 ", past the end of the image, %"
		    PRIu64 " bytes", opt->slice_start, image_size);
	if (opt->slice_end > image_size)
		opt->slice_end = image_size;
}

/* Over a backing file zeros hide its data: zero clusters, or data in version 2. */
static enum zero_rule
zero_rule(const struct options *opt)
{
	if (opt->backing_file == NULL)
		return ZEROS_DROPPED;
	return opt->version == 3 ? ZEROS_MARKED : ZEROS_STORED;
}


/*
 * The backing file, looked at where the image goes, as QEMU will open it
 * (-u: not at all); with --diff, the previous disk must be its disk.
 */
static void
check_overlay(const struct options *opt, const struct io *out, const struct base *base)
{
	const char *image_path = opt->output_path != NULL && !out->in_place ?
	    opt->output_path : opt->output_path == NULL ? stdout_path() : NULL;
	struct backing found;
	uint64_t base_size;

	if (opt->unsafe_backing || opt->print_size ||
	    !check_backing(opt->backing_file, opt->backing_format, image_path, &found))
		return;
	if (opt->diff_path == NULL || !found.size_known)
		return;
	/* An image holds a disk rounded up to whole sectors, as QEMU reads it. */
	base_size = base->disk_size;
	if (strcmp(found.format, "qcow2") == 0 && !base->is_image)
		base_size = (base_size + 511) / 512 * 512;
	if (base_size != found.disk_size)
		diex(1, "--diff %s holds %" PRIu64 " bytes, -b %s a disk of %" PRIu64
		    ": they must be the same disk (a partial copy?)", opt->diff_path,
		    base->disk_size, opt->backing_file, found.disk_size);
}

/* The image these options make must be as long as --expect-size says. */
static void
check_expected_size(const struct options *opt, const struct layout *plan)
{
	if (opt->have_expect_size && layout_image_size(plan) != opt->expect_size)
		diex(1, "the image would be %" PRIu64 " bytes, not the %" PRIu64
		    " of --expect-size: other options, or another disk", layout_image_size(plan),
		    opt->expect_size);
}

/* Write the image planned, or a slice of it, as the output allows. */
static void
write_image(struct copier *c, const struct options *opt, int new_file,
    struct layout *plan, struct sorting *sorting, struct layout *written)
{
	if (new_file) {
		write_sparse(c, plan, sorting, written);
		return;
	}
	if (opt->slice)
		write_slice(c, plan, opt->slice_start, opt->slice_end);
	else
		write_stream(c, plan);
	*written = *plan;
	/* Whatever a file held past the image is not part of it. */
	end_output(c);
}

int
main(int argc, char **argv)
{
	struct options opt = { 0 };
	struct range_list ranges = { 0 };
	struct io in = { .fd = -1, .name = "stdin" }, out = { .fd = -1, .name = "stdout" };
	struct base base = { .is_image = 0 };
	struct sorting sorting = { 0 };
	struct layout plan, written;
	struct copier c;
	int new_file = 0, passes;

	io_start();
	parse_options(argc, argv, &opt);
	if (opt.decode)
		return decode(&(struct decode_options){
		    .input_path = opt.input_path, .output_path = opt.output_path,
		    .print_size = opt.print_size, .map = opt.map, .test = opt.test,
		    .progress = opt.progress,
		    .verbose = opt.verbose, .fsync = opt.fsync });
	if (opt.map) {
		print_map(opt.input_path, opt.raw_format);
		return 0;
	}
	refuse_own_backing(opt.output_path, opt.backing_file);
	/* A terminal is refused before any work is done. */
	if (!opt.print_size)
		new_file = open_output(opt.output_path, &out);
	if ((opt.progress || opt.verbose) && !opt.print_size && is_stderr(&out))
		diex(2, "stderr is the output: -p and -v would write into the image");
	if (needs_input(&opt)) {
		open_input(opt.input_path, &in);
		if (!opt.print_size && same_file(&in, &out))
			diex(1, "%s: input file is output file", in.name);
	}
	if (!opt.print_size)
		ready_output(&out);
	in.size = disk_size(&opt, &in);
	load_ranges(&opt, &in, &out, in.size, &ranges);
	if (opt.diff_path != NULL) {
		open_base(opt.diff_path, &base, in.size, opt.ranges_path == NULL ?
		    &ranges : NULL);
		sorting.base = &base;
	}
	if (opt.backing_file != NULL)
		check_overlay(&opt, &out, &base);
	plan_image(&plan, &opt, in.size, &ranges);
	/*
	 * A file can be read twice, and dropping its clusters of zeros costs
	 * less than the bytes it saves; -o drops them in its one pass.  A
	 * slice would scan the whole disk for its part, and has no default:
	 * one that cut another image than its job's would join into garbage.
	 */
	if (opt.sparsify == -1 && opt.slice && io_seekable(&in))
		diex(2, "--slice of a file or block device needs --no-sparsify (cut the "
		    "image that option makes) or --sparsify (cut the one made whole "
		    "by default)");
	/* With -o, --no-sparsify stores the clusters of zeros as the stream does. */
	sorting.zeros_are = new_file && opt.sparsify == 0 ? ZEROS_STORED : zero_rule(&opt);
	if (opt.sparsify == -1)
		opt.sparsify = io_seekable(&in) && !new_file;
	/* A file's first bytes are looked at now; a pipe's before they are copied. */
	if (!opt.raw_format && in.fd != -1 && (!opt.print_size || io_seekable(&in)))
		refuse_image_input(&in, "-d");

	copier_init(&c, &in, &out, plan.cluster_size);
	/* Over a backing file the bytes outside the ranges are its data. */
	c.check_zeros = opt.backing_file == NULL;
	passes = (opt.sparsify || opt.diff_path != NULL) && !new_file ? 2 : 1;
	if (opt.progress)
		progress_start(in.size, passes, isatty(STDERR_FILENO));
	if (passes == 2) {
		sort_first(&c, &plan, &sorting);
		progress_next_pass();
	}
	check_expected_size(&opt, &plan);
	if (opt.slice)
		clip_slice(&opt, layout_image_size(&plan));
	if (opt.print_size) {
		printf("%" PRIu64 "\n", opt.slice ? opt.slice_end - opt.slice_start :
		    layout_image_size(&plan));
		flush_stdout();
	} else {
		write_image(&c, &opt, new_file, &plan, &sorting, &written);
		commit_output(&out, opt.fsync);
		count_progress(in.offset, c.bytes_read, 1);
		if (opt.verbose)
			print_statistics(&c, &written);
	}
	copier_free(&c);
	sorting_free(&sorting);
	if (opt.diff_path != NULL)
		close_base(&base);
	ranges_free(&ranges);
	return 0;
}

/*
 * sqcow2: turn a raw disk image on standard input into a qcow2 image on
 * standard output, in one forward pass, and back with -d.  This file
 * holds the options: parsed, checked against each other, and handed to
 * encode() or decode() (encode.c, decode.c), which drive the rest.
 */
#define _GNU_SOURCE

#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backing.h"
#include "decode.h"
#include "encode.h"
#include "files.h"
#include "options.h"
#include "qcow2.h"
#include "report.h"
#include "sizes.h"

#define VERSION		"1.0.0"

static void
help(void)
{
	fputs(
"Usage: sqcow2 [OPTION]... [RAW] > IMAGE\n"
"       sqcow2 [OPTION]... -o IMAGE [RAW]\n"
"       sqcow2 --map [RAW] > RANGES\n"
"       sqcow2 -d [-pv] [-w SIZE] [--print-size | --map] [-o RAW] [IMAGE] > RAW\n"
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
"  -w, --window SIZE        with -d from a pipe, hold up to SIZE bytes of the\n"
"                           image that come before the table that maps them,\n"
"                           or, to a pipe, before their turn (default 32M)\n"
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
"  -z, --compress           store each data cluster deflate-compressed, as\n"
"                           qemu-img convert -c does; to a stream, the disk\n"
"                           must be a file or block device, read twice\n"
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
	{ "window",		required_argument,	NULL, 'w' },
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
	{ "compress",		no_argument,		NULL, 'z' },
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
	return (ch < 256 && strchr("srcbFuz", ch) != NULL) || ch == OPT_COMPAT ||
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
	case 'w':
		opt->window = size_of_option("--window", arg);
		opt->have_window = 1;
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
	case 'z': opt->compress = 1; break;
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
	if (opt->have_window)
		diex(2, "--window is the reorder window of -d, which reads an image");
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
	while ((ch = getopt_long(argc, argv, ":dts:r:c:f:o:i:b:F:upvw:zhV", longopts,
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

int
main(int argc, char **argv)
{
	struct options opt = { 0 };

	io_start();
	parse_options(argc, argv, &opt);
	if (opt.decode)
		return decode(&opt);
	if (opt.map)
		return map_disk(&opt);
	return encode(&opt);
}

/*
 * files.c: the files at both ends: the standard descriptors, the input
 * opened and checked, and the output: standard output, a device written
 * in place, or the temporary file of -o renamed into place once
 * complete.  See files.h.
 */
#define _GNU_SOURCE

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backing.h"
#include "files.h"
#include "report.h"

/* Which of descriptors 0, 1 and 2 were closed when we started. */
static int closed_at_start[3];

void
io_start(void)
{
	for (int fd = STDIN_FILENO; fd <= STDERR_FILENO; fd++) {
		if (fcntl(fd, F_GETFD) != -1 || errno != EBADF)
			continue;
		closed_at_start[fd] = 1;
		if (open("/dev/null", fd == STDIN_FILENO ? O_RDONLY : O_WRONLY) != fd)
			_exit(1);
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGXFSZ, SIG_IGN);
}

int
stdin_was_closed(void)
{
	return closed_at_start[STDIN_FILENO];
}

void
need_standard(int fd, const char *name)
{
	if (closed_at_start[fd]) {
		errno = EBADF;
		die(1, "%s", name);
	}
}

/*
 * The raw disk: stdin or --input, read from its start wherever whoever
 * opened it left it.
 */
void
open_input(const char *path, struct io *in)
{
	if (path != NULL)
		refuse_closed(path);
	if (path != NULL && strcmp(path, "-") == 0)
		path = NULL;
	in->name = path != NULL ? path : "stdin";
	in->offset = 0;
	if (path == NULL) {
		need_standard(STDIN_FILENO, in->name);
		in->fd = STDIN_FILENO;
		/* A disk is not typed: whoever runs us bare needs the help. */
		if (isatty(in->fd))
			diex(2, "refusing to read from a terminal; try 'sqcow2 --help'");
	} else if ((in->fd = open(path, O_RDONLY)) == -1) {
		die(1, "%s", path);
	}
	io_probe(in);
	if (io_seekable(in) && lseek(in->fd, 0, SEEK_SET) == -1)
		die(1, "%s", in->name);
}

/*
 * Whether the input is the very file the output is, as cat refuses, or
 * the file that -o's temporary file will replace: sqcow2 -o disk.raw
 * disk.raw would turn the disk into its image.
 */
int
same_file(const struct io *in, const struct io *out)
{
	struct stat a, b;

	if (!io_seekable(in) || fstat(in->fd, &a) == -1)
		return 0;
	if (out->replaces && in->kind == IO_FILE &&
	    (uint64_t)a.st_dev == out->replaced_dev && (uint64_t)a.st_ino == out->replaced_ino)
		return 1;
	if (in->kind != out->kind || fstat(out->fd, &b) == -1)
		return 0;
	if (in->kind == IO_BLOCK)
		return a.st_rdev == b.st_rdev;
	return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

void
refuse_image_input(struct io *in, const char *reader)
{
	unsigned char head[IO_PEEK];
	const char *format;
	size_t len;

	if (io_seekable(in)) {
		len = in->size < sizeof(head) ? (size_t)in->size : sizeof(head);
		io_pread(in, head, len, 0);
	} else {
		len = in->npeeked = io_read(in, in->peeked, sizeof(in->peeked));
		memcpy(head, in->peeked, len);
	}
	if (strcmp(format = format_of(head, len), "raw") == 0)
		return;
	if (strcmp(format, "qcow2") == 0)
		diex(1, "%s: a qcow2 image, not a raw disk: sqcow2 %s reads it (-f raw "
		    "takes it as a disk all the same)", in->name, reader);
	diex(1, "%s: a %s image, not a raw disk: qemu-img convert -O raw reads it "
	    "(-f raw takes it as a disk all the same)", in->name, format);
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

static const int fatal_signals[] = {
	SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGALRM, SIGVTALRM,
	SIGPROF, SIGXCPU
};

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

/* Whether path names standard output's file: -o /dev/stdout to a file. */
static int
is_stdout(const char *path)
{
	struct stat named, standard;

	return !closed_at_start[STDOUT_FILENO] && stat(path, &named) == 0 &&
	    fstat(STDOUT_FILENO, &standard) == 0 && named.st_dev == standard.st_dev &&
	    named.st_ino == standard.st_ino;
}

/*
 * The descriptor a name of one stands for: /dev/stdin, /dev/stdout,
 * /dev/stderr, /dev/fd/N and /proc/self/fd/N (or /proc/PID/fd/N); -1 for
 * any other name.
 */
static int
descriptor_named(const char *path)
{
	static const char *const standard[] = { "/dev/stdin", "/dev/stdout", "/dev/stderr" };
	const char *n = NULL;
	char *end;
	long fd;

	for (int i = 0; i < 3; i++)
		if (strcmp(path, standard[i]) == 0)
			return i;
	if (strncmp(path, "/dev/fd/", 8) == 0)
		n = path + 8;
	else if (strncmp(path, "/proc/", 6) == 0 && (n = strstr(path + 6, "/fd/")) != NULL)
		n += 4;
	if (n == NULL || *n < '0' || *n > '9')
		return -1;
	fd = strtol(n, &end, 10);
	return *end == '\0' && fd <= INT_MAX ? (int)fd : -1;
}

/*
 * The descriptor that path, or the link it is, names: a rename over such
 * a name would replace it (as root, /dev/stdout itself).
 */
static int
descriptor_of(const char *path)
{
	char target[64];
	ssize_t length;
	int fd = descriptor_named(path);

	if (fd != -1 || (length = readlink(path, target, sizeof(target) - 1)) == -1)
		return fd;
	target[length] = '\0';
	return descriptor_named(target);
}

void
refuse_closed(const char *path)
{
	int fd = descriptor_of(path);

	if (fd >= STDIN_FILENO && fd <= STDERR_FILENO && closed_at_start[fd]) {
		errno = EBADF;
		die(1, "%s", path);
	}
}

/*
 * The temporary file of -o, in FILE's directory under a short name, so
 * that a FILE of NAME_MAX bytes still leaves room for it.
 */
static int
open_temp(const char *path)
{
	const char *slash = strrchr(path, '/');
	size_t dir_length = slash == NULL ? 0 : (size_t)(slash - path) + 1;
	char *name;
	int fd;

	if ((name = malloc(dir_length + sizeof(".sqcow2-XXXXXX"))) == NULL)
		die(1, "%s", path);
	memcpy(name, path, dir_length);
	strcpy(name + dir_length, ".sqcow2-XXXXXX");
	hold_signals(SIG_BLOCK);
	if ((fd = mkstemp(name)) == -1) {
		/* The image is made beside FILE: its directory is what failed. */
		name[dir_length > 1 ? dir_length - 1 : dir_length] = '\0';
		die(1, "%s", dir_length > 0 ? name : ".");
	}
	temp_path = name;
	atexit(remove_temp);
	catch_fatal_signals();
	hold_signals(SIG_UNBLOCK);
	return fd;
}

/*
 * The image replaces FILE keeping its mode, and its owner where we may;
 * a new FILE gets the mode that > would give it.
 */
static void
inherit_mode(int fd, const char *path)
{
	struct stat st;
	mode_t mask;

	if (stat(path, &st) == 0) {
		if (fchown(fd, st.st_uid, st.st_gid) == -1 && errno != EPERM)
			die(1, "%s", temp_path);
		if (fchmod(fd, st.st_mode & 07777) == -1)
			die(1, "%s", temp_path);
		return;
	}
	mask = umask(0);
	umask(mask);
	if (fchmod(fd, 0666 & ~mask) == -1)
		die(1, "%s", temp_path);
}

/*
 * Standard output, or a device, FIFO or descriptor named by -o, is
 * written in place, in the stream form; it is cut to nothing only by
 * ready_output, once the input has been seen not to be it.  Any other
 * FILE is made anew as a temporary file beside it.
 */
int
open_output(const char *path, struct io *out)
{
	struct stat st;
	int new_file = 0;

	out->name = path != NULL ? path : "stdout";
	out->offset = 0;
	out->in_place = out->replaces = 0;
	if (path != NULL)
		refuse_closed(path);
	if (path == NULL || is_stdout(path)) {
		need_standard(STDOUT_FILENO, "stdout");
		out->fd = STDOUT_FILENO;
	} else if ((stat(path, &st) == 0 && !S_ISREG(st.st_mode)) ||
	    descriptor_of(path) != -1) {
		if ((out->fd = open(path, O_WRONLY)) == -1)
			die(1, "%s", path);
		out->in_place = 1;
	} else {
		/* A link is replaced, not followed; what it names is compared all the same. */
		if ((out->replaces = stat(path, &st) == 0)) {
			out->replaced_dev = (uint64_t)st.st_dev;
			out->replaced_ino = (uint64_t)st.st_ino;
		}
		out->fd = open_temp(path);
		inherit_mode(out->fd, path);
		new_file = 1;
	}
	if (isatty(out->fd))
		diex(2, "refusing to write to a terminal; try 'sqcow2 --help'");
	io_probe(out);
	return new_file;
}

void
ready_output(struct io *out)
{
	if (out->in_place && out->kind == IO_FILE && ftruncate(out->fd, 0) == -1)
		die(1, "%s", out->name);
}

void
flush_stdout(void)
{
	need_standard(STDOUT_FILENO, "stdout");
	if (fflush(stdout) == EOF || ferror(stdout))
		die(1, "stdout");
}

int
is_stderr(const struct io *out)
{
	struct stat a, b;

	return out->kind != IO_OTHER && fstat(out->fd, &a) == 0 &&
	    fstat(STDERR_FILENO, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

int
is_output(int fd, const struct io *out)
{
	struct stat a, b;

	return out->fd != -1 && fstat(fd, &a) == 0 && fstat(out->fd, &b) == 0 &&
	    a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

static int
same_inode(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/*
 * An image that is its own backing file is a loop QEMU never leaves.  A
 * regular file on stdout was named in the working directory, where the
 * backing file's name is read; an -o file that does not exist yet is
 * compared by name.
 */
void
refuse_own_backing(const char *output, const char *backing_file)
{
	const char *slash;
	struct stat a, b;
	char *backing;
	int exists;

	if (backing_file == NULL)
		return;
	if (output == NULL || strcmp(output, "-") == 0) {
		if (fstat(STDOUT_FILENO, &a) == 0 && S_ISREG(a.st_mode) &&
		    stat(backing_file, &b) == 0 && same_inode(&a, &b))
			diex(2, "standard output is the backing file %s", backing_file);
		return;
	}
	exists = stat(output, &a) == 0;
	slash = strrchr(output, '/');
	if (backing_file[0] == '/' || slash == NULL) {
		backing = strdup(backing_file);
	} else if ((backing = malloc((size_t)(slash - output) + 2 +
	    strlen(backing_file))) != NULL) {
		memcpy(backing, output, (size_t)(slash - output) + 1);
		strcpy(backing + (slash - output) + 1, backing_file);
	}
	if (backing == NULL)
		die(1, "%s", backing_file);
	if (exists ? stat(backing, &b) == 0 && same_inode(&a, &b) :
	    strcmp(backing, output) == 0)
		diex(2, "-o %s is the backing file %s", output, backing_file);
	free(backing);
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

/* A copy of the output's descriptor, and where its header's magic is. */
static int guarded_fd = -1;
static uint64_t guarded_offset;

static void
wipe_header(void)
{
	static const unsigned char zeros[4];

	if (guarded_fd != -1)
		(void)!pwrite(guarded_fd, zeros, sizeof(zeros), (off_t)guarded_offset);
}

void
guard_header(const struct io *out, uint64_t offset)
{
	if ((guarded_fd = dup(out->fd)) == -1)
		die(1, "%s", out->name);
	guarded_offset = offset;
	atexit(wipe_header);
}

/* Close, and for a temporary file rename it over FILE; durable: fsync both. */
void
commit_output(struct io *out, int durable)
{
	char *name = temp_path;

	/* A pipe or a socket cannot be synced, and has nothing to make durable. */
	if (durable && fsync(out->fd) == -1 && errno != EINVAL)
		die(1, "%s", out->name);
	if (close(out->fd) == -1)
		die(1, "%s", out->name);
	if (guarded_fd != -1) {
		close(guarded_fd);
		guarded_fd = -1;
	}
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

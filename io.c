/*
 * io.c: the byte mover; see io.h.
 */
#define _GNU_SOURCE

#include <sys/ioctl.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/fs.h>		/* BLKGETSIZE64 */

#include "io.h"
#include "report.h"

#define KERNEL_CHUNK	(1u << 30)	/* most one copy_file_range or splice asks */
#define PROGRESS_CHUNK	(8u << 20)	/* the same under -p: five updates a second
					   down to 40 MB/s */
#define PIPE_SIZE	(1 << 20)	/* the default pipe-max-size */

static _Noreturn void
input_ended(const struct io *in)
{
	diex(1, "input ended at offset %" PRIu64 ", before --size %" PRIu64,
	    in->offset, in->size);
}

void
io_probe(struct io *io)
{
	struct stat st;

	if (fstat(io->fd, &st) == -1)
		die(1, "%s", io->name);
	if (S_ISDIR(st.st_mode)) {
		errno = EISDIR;
		die(1, "%s", io->name);
	}
	io->kind = S_ISFIFO(st.st_mode) ? IO_PIPE : S_ISREG(st.st_mode) ? IO_FILE :
	    S_ISBLK(st.st_mode) ? IO_BLOCK : IO_OTHER;
	io->size = (uint64_t)st.st_size;
	if (io->kind == IO_BLOCK && ioctl(io->fd, BLKGETSIZE64, &io->size) == -1)
		die(1, "%s", io->name);
}

int
io_seekable(const struct io *io)
{
	return io->kind == IO_FILE || io->kind == IO_BLOCK;
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

/* The bytes of a pipe read ahead by refuse_image_input, given out first. */
static size_t
take_peeked(struct io *in, void *buf, size_t len)
{
	size_t n = len < in->npeeked ? len : in->npeeked;

	memcpy(buf, in->peeked, n);
	memmove(in->peeked, in->peeked + n, in->npeeked - n);
	in->npeeked -= n;
	return n;
}

size_t
read_full(struct io *in, void *buf, size_t len)
{
	size_t done = take_peeked(in, buf, len);

	while (done < len) {
		ssize_t n = read(in->fd, (char *)buf + done, len - done);

		if (n == 0)
			break;
		if (n < 0) {
			if (again(in->fd, POLLIN))
				continue;
			die(1, "%s", in->name);
		}
		done += (size_t)n;
	}
	return done;
}

/* A zero-byte write means the disk is full. */
void
write_full(struct io *out, const void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = write(out->fd, (const char *)buf + done, len - done);

		if (n < 0 && again(out->fd, POLLOUT))
			continue;
		if (n == 0)
			errno = ENOSPC;
		if (n <= 0)
			die(1, "%s", out->name);
		done += (size_t)n;
	}
}

void
flush_stdout(void)
{
	need_standard(STDOUT_FILENO, "stdout");
	if (fflush(stdout) == EOF || ferror(stdout))
		die(1, "stdout");
}

/*
 * The one place where moved bytes are counted: the offsets of both sides,
 * the totals of -v, and the progress of -p.
 */
static void
count(struct copier *c, uint64_t read, uint64_t skipped, uint64_t written)
{
	c->in->offset += read + skipped;
	c->out->offset += written;
	c->bytes_read += read;
	c->bytes_skipped += skipped;
	c->bytes_written += written;
	count_progress(c->progress_by_output ? c->out->offset : c->in->offset,
	    c->bytes_read, 0);
}

void
copier_init(struct copier *c, struct io *in, struct io *out, size_t cluster_size)
{
	memset(c, 0, sizeof(*c));
	c->in = in;
	c->out = out;
	c->check_zeros = 1;
	c->seek_data = io_seekable(in);
	c->buffer_size = IO_SIZE > cluster_size ? IO_SIZE : cluster_size;
	if ((c->buffer = malloc(c->buffer_size)) == NULL ||
	    (c->scratch = malloc(IO_SIZE)) == NULL)
		die(1, "buffer");
	c->use_copy_range = in->kind == IO_FILE && out->kind == IO_FILE;
	c->use_splice = in->kind == IO_PIPE || out->kind == IO_PIPE;
	/*
	 * fallocate moves the end of the file, and appending (>>) writes
	 * there, so an appended image reserves nothing.  Otherwise the writes
	 * start where the file's offset stands.
	 */
	c->can_rewrite = io_seekable(out) && !(fcntl(out->fd, F_GETFL) & O_APPEND);
	c->use_fallocate = c->can_rewrite && out->kind == IO_FILE;
	if (c->use_fallocate) {
		off_t start = lseek(out->fd, 0, SEEK_CUR);

		out->offset = c->reserved = start > 0 ? (uint64_t)start : 0;
	}
	/* Larger pipes, fewer and larger moves; failure costs only speed. */
	if (in->kind == IO_PIPE)
		(void)fcntl(in->fd, F_SETPIPE_SZ, PIPE_SIZE);
	if (out->kind == IO_PIPE)
		(void)fcntl(out->fd, F_SETPIPE_SZ, PIPE_SIZE);
}

void
copier_free(struct copier *c)
{
	free(c->buffer);
	free(c->scratch);
	c->buffer = c->scratch = NULL;
}

/*
 * Reserve the output's blocks up to end before writing them: ext4 then
 * allocates large extents instead of a page at a time, a third less time
 * here.  When end is exact, a full disk is an error, and an early one;
 * a guess ahead that does not fit, or a file system without fallocate,
 * only stops the reserving.
 */
void
reserve_output(struct copier *c, uint64_t end, int exact)
{
	if (!c->use_fallocate || end <= c->reserved)
		return;
	if (fallocate(c->out->fd, 0, (off_t)c->reserved, (off_t)(end - c->reserved)) == -1) {
		if (exact && (errno == ENOSPC || errno == EDQUOT || errno == EFBIG))
			die(1, "%s", c->out->name);
		c->use_fallocate = 0;
		return;
	}
	c->reserved = end;
}

size_t
read_some(struct copier *c, void *buf, size_t len)
{
	size_t got = read_full(c->in, buf, len);

	count(c, got, 0, 0);
	return got;
}

void
reserve_span(struct copier *c, uint64_t len)
{
	if (c->out->kind != IO_FILE || !c->can_rewrite || c->no_reserving)
		return;
	/* The file's size moves only with its writes: see write_disk. */
	if (fallocate(c->out->fd, FALLOC_FL_KEEP_SIZE, (off_t)c->out->offset,
	    (off_t)len) == -1)
		c->no_reserving = 1;
}

void
read_exact(struct copier *c, void *buf, size_t len)
{
	if (read_some(c, buf, len) != len)
		input_ended(c->in);
}

void
rewrite_output(struct copier *c, uint64_t offset, const void *buf, size_t len)
{
	if (lseek(c->out->fd, (off_t)offset, SEEK_SET) == -1)
		die(1, "%s", c->out->name);
	write_full(c->out, buf, len);
	if (lseek(c->out->fd, (off_t)c->out->offset, SEEK_SET) == -1)
		die(1, "%s", c->out->name);
}

void
read_at(struct io *io, void *buf, size_t len, uint64_t offset)
{
	size_t done = 0, have;

	have = offset >= io->size ? 0 : io->size - offset < len ? (size_t)(io->size - offset) : len;
	while (done < have) {
		ssize_t n = pread(io->fd, (char *)buf + done, have - done, (off_t)(offset + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				diex(1, "%s: changed size while being read", io->name);
			die(1, "%s", io->name);
		}
		done += (size_t)n;
	}
	memset((char *)buf + have, 0, len - have);
}

size_t
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
copy_in_kernel(struct copier *c, size_t len)
{
	int in = c->in->fd, out = c->out->fd;
	ssize_t n;

	for (;;) {
		if (c->use_copy_range)
			n = copy_file_range(in, NULL, out, NULL, len, 0);
		else
			n = splice(in, NULL, out, NULL, len, SPLICE_F_MOVE | SPLICE_F_MORE);
		if (n >= 0 || (errno != EINTR && errno != EAGAIN))
			break;
		/* Either side may be the one not ready. */
		if (errno == EAGAIN) {
			again(in, POLLIN);
			errno = EAGAIN;
			again(out, POLLOUT);
		}
	}
	/*
	 * EIO may come from either side: read and write then find out which,
	 * and name it, as they do for every other error.
	 */
	if (n < 0 && (refused(errno) || errno == EIO)) {
		c->use_copy_range = c->use_splice = 0;
		return -1;
	}
	if (n < 0) {
		/* Which side failed shows only in errno. */
		if (errno == EPIPE || errno == ENOSPC || errno == EDQUOT || errno == EFBIG)
			die(1, "%s", c->out->name);
		die(1, "%s", c->in->name);
	}
	return n;
}

void
write_out(struct copier *c, const void *buf, size_t len)
{
	flush_buffer(c);
	reserve_output(c, c->out->offset + len, 0);
	write_full(c->out, buf, len);
	count(c, 0, 0, len);
}

uint64_t
share_range(struct copier *c, uint64_t offset, uint64_t len)
{
	loff_t from = (loff_t)offset;
	uint64_t done = 0;

	flush_buffer(c);
	while (done < len && c->use_copy_range) {
		uint64_t left = len - done;
		ssize_t n = copy_file_range(c->in->fd, &from, c->out->fd, NULL,
		    left < KERNEL_CHUNK ? (size_t)left : KERNEL_CHUNK, 0);

		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0 && (refused(errno) || errno == EIO)) {
			c->use_copy_range = 0;
			break;
		}
		if (n < 0)
			die(1, "%s", errno == ENOSPC || errno == EDQUOT || errno == EFBIG ?
			    c->out->name : c->in->name);
		if (n == 0)
			break;
		count(c, 0, 0, (uint64_t)n);
		done += (uint64_t)n;
	}
	return done;
}

/*
 * What is buffered goes out first: the slow path carries bytes in it, and
 * so do the bytes read ahead from a pipe.
 */
uint64_t
copy_some(struct copier *c, uint64_t len)
{
	uint64_t done = 0;

	flush_buffer(c);
	if (c->in->npeeked > 0 && len > 0) {
		size_t chunk = len < c->in->npeeked ? (size_t)len : c->in->npeeked;

		done = read_some(c, c->buffer, chunk);
		write_full(c->out, c->buffer, (size_t)done);
		count(c, 0, 0, done);
	}
	while (done < len && (c->use_copy_range || c->use_splice)) {
		size_t most = progress_on() ? PROGRESS_CHUNK : KERNEL_CHUNK;
		uint64_t left = len - done;
		ssize_t n = copy_in_kernel(c, left < most ? (size_t)left : most);

		if (n == 0)
			return done;
		if (n < 0)
			break;
		count(c, (uint64_t)n, 0, (uint64_t)n);
		done += (uint64_t)n;
	}
	while (done < len) {
		uint64_t left = len - done;
		size_t chunk = left < c->buffer_size ? (size_t)left : c->buffer_size;
		size_t got = read_some(c, c->buffer, chunk);

		write_full(c->out, c->buffer, got);
		count(c, 0, 0, got);
		done += got;
		if (got < chunk)
			break;
	}
	return done;
}

void
copy_bytes(struct copier *c, uint64_t len)
{
	if (copy_some(c, len) != len)
		input_ended(c->in);
}

static void
read_zeros(struct copier *c, uint64_t len)
{
	while (len > 0) {
		size_t chunk = len < IO_SIZE ? (size_t)len : IO_SIZE;
		size_t nonzero;

		read_exact(c, c->scratch, chunk);
		if ((nonzero = first_nonzero(c->scratch, chunk)) != chunk)
			diex(1, "non-zero byte at input offset %" PRIu64
			    ", outside the ranges", c->in->offset - chunk + nonzero);
		len -= chunk;
	}
}

void
seek_input(struct copier *c, uint64_t offset)
{
	if (lseek(c->in->fd, (off_t)offset, SEEK_SET) == -1)
		die(1, "%s", c->in->name);
	count(c, 0, offset - c->in->offset, 0);
}

/* Data at or after offset: 1 with *data and *hole set, 0 if none, -1. */
static int
find_data(int fd, uint64_t offset, uint64_t *data, uint64_t *hole)
{
	off_t found;

	if ((found = lseek(fd, (off_t)offset, SEEK_DATA)) == -1)
		return errno == ENXIO ? 0 : -1;
	*data = (uint64_t)found;
	if ((found = lseek(fd, found, SEEK_HOLE)) == -1)
		return -1;
	*hole = (uint64_t)found;
	return 1;
}

/* EINVAL or EOPNOTSUPP: the file system cannot tell data from holes. */
static int
cannot_tell(int error)
{
	return error == EINVAL || error == EOPNOTSUPP;
}

int
next_data(struct copier *c, uint64_t *data, uint64_t *hole)
{
	int found = find_data(c->in->fd, c->in->offset, data, hole);

	if (found == -1) {
		if (!cannot_tell(errno))
			die(1, "%s", c->in->name);
		c->seek_data = 0;
	}
	if (lseek(c->in->fd, (off_t)c->in->offset, SEEK_SET) == -1)
		die(1, "%s", c->in->name);
	return found;
}

void
move_input(struct copier *c, uint64_t offset)
{
	if (offset >= c->in->offset) {
		seek_input(c, offset);
		return;
	}
	if (lseek(c->in->fd, (off_t)offset, SEEK_SET) == -1)
		die(1, "%s", c->in->name);
	c->in->offset = offset;
}

uint64_t
skip_some(struct copier *c, uint64_t len)
{
	uint64_t done = 0;

	if (io_seekable(c->in)) {
		seek_input(c, c->in->offset + len);
		return len;
	}
	while (done < len) {
		uint64_t left = len - done;
		size_t chunk = left < IO_SIZE ? (size_t)left : IO_SIZE;
		size_t got = read_some(c, c->scratch, chunk);

		done += got;
		if (got < chunk)
			break;
	}
	return done;
}

void
skip_input(struct copier *c, uint64_t len)
{
	if (skip_some(c, len) != len)
		input_ended(c->in);
}

/*
 * Over a backing file the bytes of no stored cluster are unchanged data
 * that the backing file holds, and are only got past.  Otherwise they are
 * dropped, so they had better be zero: holes are zero by definition and
 * are skipped, and only what the file system calls data is read.
 */
void
skip_unstored(struct copier *c, uint64_t len)
{
	uint64_t end = c->in->offset + len;

	if (!c->check_zeros) {
		skip_input(c, len);
		return;
	}
	while (c->seek_data && c->in->offset < end) {
		uint64_t data, hole;
		int found = next_data(c, &data, &hole);

		if (found == -1)
			break;
		if (found == 0 || data >= end) {
			seek_input(c, end);
			return;
		}
		seek_input(c, data);
		read_zeros(c, (hole < end ? hole : end) - data);
	}
	read_zeros(c, end - c->in->offset);
}

void
finish_input(struct copier *c)
{
	unsigned char extra;

	skip_unstored(c, c->in->size - c->in->offset);
	if (read_full(c->in, &extra, 1) != 0)
		diex(1, "input longer than --size %" PRIu64, c->in->size);
}

/* Zeros go through the buffer, flushed when full. */
void
write_zeros(struct copier *c, uint64_t len)
{
	while (len > 0) {
		size_t room = c->buffer_size - c->filled;
		size_t chunk = len < room ? (size_t)len : room;

		memset(c->buffer + c->filled, 0, chunk);
		c->filled += chunk;
		len -= chunk;
		if (c->filled == c->buffer_size)
			flush_buffer(c);
	}
}

void
flush_buffer(struct copier *c)
{
	size_t filled = c->filled;

	reserve_output(c, c->out->offset + filled, 1);
	c->filled = 0;
	write_full(c->out, c->buffer, filled);
	count(c, 0, 0, filled);
}

void
data_ranges(struct io *in, uint64_t size, struct range_list *list)
{
	uint64_t offset = 0, data, hole;
	int found = 0;

	while (offset < size && (found = find_data(in->fd, offset, &data, &hole)) == 1 &&
	    data < size) {
		if (hole > size)
			hole = size;
		if (ranges_add(list, data, hole - data) == -1)
			die(1, "%s", in->name);
		offset = hole;
	}
	if (offset < size && found == -1) {
		if (!cannot_tell(errno))
			die(1, "%s", in->name);
		/* All of it may be data. */
		list->n = 0;
		if (size > 0 && ranges_add(list, 0, size) == -1)
			die(1, "%s", in->name);
	}
	if (lseek(in->fd, 0, SEEK_SET) == -1)
		die(1, "%s", in->name);
}

void
skip_output(struct copier *c, uint64_t len)
{
	flush_buffer(c);
	if (lseek(c->out->fd, (off_t)len, SEEK_CUR) == -1)
		die(1, "%s", c->out->name);
	c->out->offset += len;
	count(c, 0, 0, 0);
}

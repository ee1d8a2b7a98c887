/*
 * copier.c: bytes from the input to the output, counted; see copier.h.
 */
#define _GNU_SOURCE

#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/vfs.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/fs.h>		/* BLKZEROOUT */
#include <linux/magic.h>	/* TMPFS_MAGIC */

#include "copier.h"
#include "report.h"

#define KERNEL_CHUNK	(1u << 30)	/* most one copy_file_range or splice asks */
#define PROGRESS_CHUNK	(8u << 20)	/* the same under -p: five updates a second
					   down to 40 MB/s */
#define PIPE_SIZE	(1 << 20)	/* the default pipe-max-size */
#define RESERVE_STEP	(UINT64_C(64) << 20)	/* output_reserve_ahead's step */

struct copier {
	struct io *in, *out;
	int flags;		/* COPY_* */
	int seek_data;		/* the input finds its holes with SEEK_DATA */
	int use_copy_range;	/* copy_file_range(2) between two regular files */
	int use_splice;		/* splice(2) where one side is a pipe */
	int use_fallocate;	/* a regular output: reserve blocks ahead */
	int can_rewrite;	/* a regular output, not appended to: it can
				   seek back and write a cluster again */
	int no_reserving;	/* fallocate refused: output_reserve_span stops */
	size_t cluster_size;
	unsigned char *buffer;	/* what is to be written, then free room */
	size_t buffer_size;
	size_t filled;		/* bytes of buffer not yet written */
	unsigned char *scratch;	/* bytes read only to be checked for zeros */
	uint64_t reserved;	/* blocks of output reserved up to here */
	struct copy_counts counts;
	uint64_t done_before, done_from;	/* -p of output written out of order */
	/*
	 * What SEEK_DATA last said: asked at extent_asked, the first data is
	 * [extent_data, extent_hole), or none (extent_data == UINT64_MAX).
	 * On tmpfs each SEEK_HOLE scans to the end of the file: asking for
	 * every chunk read would cost the square of the disk.
	 */
	int extent_known;
	uint64_t extent_asked, extent_data, extent_hole;
	void *map;		/* input_map's window of a regular input */
	size_t map_length;
};

static _Noreturn void
input_ended(const struct io *in)
{
	diex(1, "input ended at offset %" PRIu64 ", before --size %" PRIu64,
	    in->offset, in->size);
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
	c->counts.read += read;
	c->counts.skipped += skipped;
	c->counts.written += written;
	count_progress(c->flags & COPY_OUTPUT_PROGRESS ? c->done_before +
	    (c->out->offset - c->done_from) : c->in->offset, c->counts.read, 0);
}

/*
 * Whether reserving blocks ahead helps: it does where extents are made
 * (ext4, XFS), and costs twice on tmpfs, which zeroes each page it
 * reserves before the data is written over it.
 */
static int
reserving_helps(const struct io *out)
{
	struct statfs fs;

	return fstatfs(out->fd, &fs) == -1 || fs.f_type != TMPFS_MAGIC;
}

/* How the output will be written: in the kernel, reserved, rewritten. */
static void
choose_paths(struct copier *c)
{
	struct io *in = c->in, *out = c->out;

	c->seek_data = io_seekable(in);
	c->use_copy_range = in->kind == IO_FILE && out->kind == IO_FILE;
	c->use_splice = in->kind == IO_PIPE || out->kind == IO_PIPE;
	/*
	 * fallocate moves the end of the file, and appending (>>) writes
	 * there, so an appended image reserves nothing.  Otherwise the writes
	 * start where the file's offset stands.
	 */
	c->can_rewrite = io_seekable(out) && !(fcntl(out->fd, F_GETFL) & O_APPEND);
	c->use_fallocate = c->can_rewrite && out->kind == IO_FILE &&
	    !(c->flags & COPY_NO_RESERVE) && reserving_helps(out);
	c->no_reserving = !reserving_helps(out);
	if (c->can_rewrite && out->kind == IO_FILE) {
		off_t start = lseek(out->fd, 0, SEEK_CUR);

		out->offset = c->reserved = start > 0 ? (uint64_t)start : 0;
	}
	/* Larger pipes, fewer and larger moves; failure costs only speed. */
	if (in->kind == IO_PIPE)
		(void)fcntl(in->fd, F_SETPIPE_SZ, PIPE_SIZE);
	if (out->kind == IO_PIPE)
		(void)fcntl(out->fd, F_SETPIPE_SZ, PIPE_SIZE);
}

struct copier *
copier_new(struct io *in, struct io *out, size_t cluster_size, int flags)
{
	struct copier *c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		die(1, "buffer");
	c->in = in;
	c->out = out;
	c->flags = flags;
	c->cluster_size = cluster_size;
	c->buffer_size = IO_SIZE > cluster_size ? IO_SIZE : cluster_size;
	if ((c->buffer = malloc(c->buffer_size)) == NULL ||
	    (c->scratch = malloc(IO_SIZE)) == NULL)
		die(1, "buffer");
	choose_paths(c);
	return c;
}

void
copier_free(struct copier *c)
{
	if (c == NULL)
		return;
	input_unmap(c);
	free(c->buffer);
	free(c->scratch);
	free(c);
}

const struct io *
input_of(const struct copier *c)
{
	return c->in;
}

const struct io *
output_of(const struct copier *c)
{
	return c->out;
}

const struct copy_counts *
copier_counts(const struct copier *c)
{
	return &c->counts;
}

int
output_can_rewrite(const struct copier *c)
{
	return c->can_rewrite;
}

int
copier_shares(const struct copier *c)
{
	return c->use_copy_range;
}

/* The input */

size_t
input_read(struct copier *c, void *buf, size_t len)
{
	size_t got = io_read(c->in, buf, len);

	count(c, got, 0, 0);
	return got;
}

void
input_read_exact(struct copier *c, void *buf, size_t len)
{
	if (input_read(c, buf, len) != len)
		input_ended(c->in);
}

/* Whether a failed copy_file_range or splice only means "not here". */
static int
refused(int error)
{
	return error == EINVAL || error == ENOSYS || error == EXDEV ||
	    error == EOPNOTSUPP || error == EBADF;
}

/* Which end failed a call of the kernel's that moves bytes: errno says. */
static _Noreturn void
move_failed(const struct copier *c)
{
	if (errno == EPIPE || errno == ENOSPC || errno == EDQUOT || errno == EFBIG)
		die(1, "%s", c->out->name);
	die(1, "%s", c->in->name);
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
			io_again(in, POLLIN);
			errno = EAGAIN;
			io_again(out, POLLOUT);
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
	if (n < 0)
		move_failed(c);
	return n;
}

/*
 * Up to len bytes read a chunk at a time into buf, of size bytes, and
 * written to the output if to_output; fewer only at the input's end.
 * Through the buffer, this is the way of copying that works everywhere.
 */
static uint64_t
read_chunks(struct copier *c, uint64_t len, unsigned char *buf, size_t size,
    int to_output)
{
	uint64_t done = 0;

	while (done < len) {
		size_t chunk = len - done < size ? (size_t)(len - done) : size;
		size_t got = input_read(c, buf, chunk);

		if (to_output) {
			io_write(c->out, buf, got);
			count(c, 0, 0, got);
		}
		done += got;
		if (got < chunk)
			break;
	}
	return done;
}

/*
 * What is buffered goes out first; the bytes read ahead from a pipe go
 * through the buffer too.
 */
uint64_t
input_copy(struct copier *c, uint64_t len)
{
	uint64_t done = 0;

	output_flush(c);
	if (c->in->npeeked > 0)
		done = read_chunks(c, len < c->in->npeeked ? len : c->in->npeeked,
		    c->buffer, c->buffer_size, 1);
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
	return done + read_chunks(c, len - done, c->buffer, c->buffer_size, 1);
}

void
input_copy_exact(struct copier *c, uint64_t len)
{
	if (input_copy(c, len) != len)
		input_ended(c->in);
}

uint64_t
input_drain(struct copier *c, uint64_t len)
{
	return read_chunks(c, len, c->scratch, IO_SIZE, 0);
}

void
input_seek(struct copier *c, uint64_t offset)
{
	if (lseek(c->in->fd, (off_t)offset, SEEK_SET) == -1)
		die(1, "%s", c->in->name);
	count(c, 0, offset - c->in->offset, 0);
}

void
input_move(struct copier *c, uint64_t offset)
{
	if (offset >= c->in->offset) {
		input_seek(c, offset);
		return;
	}
	if (lseek(c->in->fd, (off_t)offset, SEEK_SET) == -1)
		die(1, "%s", c->in->name);
	c->in->offset = offset;
}

uint64_t
input_skip(struct copier *c, uint64_t len)
{
	if (!io_seekable(c->in))
		return input_drain(c, len);
	input_seek(c, c->in->offset + len);
	return len;
}

void
input_skip_exact(struct copier *c, uint64_t len)
{
	if (input_skip(c, len) != len)
		input_ended(c->in);
}

/* Ask SEEK_DATA from offset on, and keep the answer. */
static int
ask_next_data(struct copier *c, uint64_t offset)
{
	int found = io_find_data(c->in, offset, &c->extent_data, &c->extent_hole);

	if (found == -1) {
		if (!io_cannot_tell(errno))
			die(1, "%s", c->in->name);
		c->seek_data = 0;
		return -1;
	}
	if (found == 0)
		c->extent_data = c->extent_hole = UINT64_MAX;
	c->extent_known = 1;
	c->extent_asked = offset;
	if (lseek(c->in->fd, (off_t)c->in->offset, SEEK_SET) == -1)
		die(1, "%s", c->in->name);
	return found;
}

int
input_next_data(struct copier *c, uint64_t *data, uint64_t *hole)
{
	uint64_t at = c->in->offset;

	if (!c->seek_data)
		return -1;
	if ((!c->extent_known || at < c->extent_asked || at >= c->extent_hole) &&
	    ask_next_data(c, at) == -1)
		return -1;
	if (c->extent_data == UINT64_MAX)
		return 0;
	*data = at > c->extent_data ? at : c->extent_data;
	*hole = c->extent_hole;
	return 1;
}

const unsigned char *
input_map(struct copier *c, size_t len)
{
	uint64_t at = c->in->offset;
	long page = sysconf(_SC_PAGESIZE);
	uint64_t start = at / (uint64_t)page * (uint64_t)page;
	void *map;

	input_unmap(c);
	if (c->in->kind != IO_FILE || c->in->npeeked > 0 || len == 0 ||
	    at > c->in->size || len > c->in->size - at)
		return NULL;
	map = mmap(NULL, (size_t)(at - start) + len, PROT_READ, MAP_SHARED,
	    c->in->fd, (off_t)start);
	if (map == MAP_FAILED)
		return NULL;
	c->map = map;
	c->map_length = (size_t)(at - start) + len;
	/* The descriptor's offset follows the input's, for the reads after. */
	if (lseek(c->in->fd, (off_t)(at + len), SEEK_SET) == -1)
		die(1, "%s", c->in->name);
	count(c, len, 0, 0);
	return (const unsigned char *)map + (at - start);
}

void
input_unmap(struct copier *c)
{
	if (c->map != NULL)
		munmap(c->map, c->map_length);
	c->map = NULL;
}

/*
 * len bytes read, which must be zero: they are in no stored cluster.  A
 * file's are looked at where they are, not copied.
 */
static void
read_zeros(struct copier *c, uint64_t len)
{
	while (len > 0) {
		size_t chunk = len < IO_SIZE ? (size_t)len : IO_SIZE;
		const unsigned char *bytes = input_map(c, chunk);
		size_t nonzero;

		if (bytes == NULL) {
			input_read_exact(c, c->scratch, chunk);
			bytes = c->scratch;
		}
		if ((nonzero = first_nonzero(bytes, chunk)) != chunk)
			diex(1, "non-zero byte at input offset %" PRIu64
			    ", outside the ranges", c->in->offset - chunk + nonzero);
		len -= chunk;
	}
	input_unmap(c);
}

/*
 * Over a backing file the bytes of no stored cluster are unchanged data
 * that the backing file holds, and are only got past.  Otherwise they are
 * dropped, so they had better be zero: holes are zero by definition and
 * are skipped, and only what the file system calls data is read.
 */
void
input_pass_unstored(struct copier *c, uint64_t len)
{
	uint64_t end = c->in->offset + len;

	if (!(c->flags & COPY_CHECK_ZEROS)) {
		input_skip_exact(c, len);
		return;
	}
	while (c->seek_data && c->in->offset < end) {
		uint64_t data, hole;
		int found = input_next_data(c, &data, &hole);

		if (found == -1)
			break;
		if (found == 0 || data >= end) {
			input_seek(c, end);
			return;
		}
		input_seek(c, data);
		read_zeros(c, (hole < end ? hole : end) - data);
	}
	read_zeros(c, end - c->in->offset);
}

void
input_finish(struct copier *c)
{
	unsigned char extra;

	input_pass_unstored(c, c->in->size - c->in->offset);
	if (io_read(c->in, &extra, 1) != 0)
		diex(1, "input longer than --size %" PRIu64, c->in->size);
}

uint64_t
input_share(struct copier *c, uint64_t offset, uint64_t len)
{
	loff_t from = (loff_t)offset;
	uint64_t done = 0;

	output_flush(c);
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
			move_failed(c);
		if (n == 0)
			break;
		count(c, 0, 0, (uint64_t)n);
		done += (uint64_t)n;
	}
	return done;
}

/* The output */

/*
 * Reserve the output's blocks up to end before writing them: ext4 then
 * allocates large extents instead of a page at a time, a third less time
 * here.  When end is exact, a full disk is an error, and an early one;
 * a guess ahead that does not fit, or a file system without fallocate,
 * only stops the reserving.
 */
void
output_reserve(struct copier *c, uint64_t end, int exact)
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

void
output_reserve_ahead(struct copier *c, uint64_t limit)
{
	if (c->out->offset + c->buffer_size > c->reserved)
		output_reserve(c, c->out->offset + RESERVE_STEP < limit ?
		    c->out->offset + RESERVE_STEP : limit, 0);
}

void
output_reserve_span(struct copier *c, uint64_t len)
{
	if (c->out->kind != IO_FILE || !c->can_rewrite || c->no_reserving ||
	    c->out->offset + len <= c->reserved)
		return;
	/* The file's size moves only with its writes: see decode.c's copy_data. */
	if (fallocate(c->out->fd, FALLOC_FL_KEEP_SIZE, (off_t)c->out->offset,
	    (off_t)len) == -1)
		c->no_reserving = 1;
}

void
output_flush(struct copier *c)
{
	size_t filled = c->filled;

	output_reserve(c, c->out->offset + filled, 1);
	c->filled = 0;
	io_write(c->out, c->buffer, filled);
	count(c, 0, 0, filled);
}

void
output_write(struct copier *c, const void *buf, size_t len)
{
	output_flush(c);
	output_reserve(c, c->out->offset + len, 0);
	io_write(c->out, buf, len);
	count(c, 0, 0, len);
}

/* Zeros go through the buffer, flushed when full. */
void
output_zeros(struct copier *c, uint64_t len)
{
	while (len > 0) {
		size_t room = c->buffer_size - c->filled;
		size_t chunk = len < room ? (size_t)len : room;

		memset(c->buffer + c->filled, 0, chunk);
		c->filled += chunk;
		len -= chunk;
		if (c->filled == c->buffer_size)
			output_flush(c);
	}
}

unsigned char *
output_slot(struct copier *c, size_t len)
{
	unsigned char *slot;

	if (c->filled + len > c->buffer_size)
		output_flush(c);
	slot = c->buffer + c->filled;
	c->filled += len;
	return slot;
}

void
output_cut(struct copier *c, size_t len)
{
	c->filled -= len;
}

unsigned char *
output_room(struct copier *c, size_t *room)
{
	if (c->buffer_size - c->filled < c->cluster_size)
		output_flush(c);
	*room = c->buffer_size - c->filled;
	return c->buffer + c->filled;
}

void
output_keep(struct copier *c, const unsigned char *bytes, size_t len)
{
	if (bytes != c->buffer + c->filled)
		memmove(c->buffer + c->filled, bytes, len);
	c->filled += len;
}

void
output_rewrite(struct copier *c, uint64_t offset, const void *buf, size_t len)
{
	if (lseek(c->out->fd, (off_t)offset, SEEK_SET) == -1)
		die(1, "%s", c->out->name);
	io_write(c->out, buf, len);
	if (lseek(c->out->fd, (off_t)c->out->offset, SEEK_SET) == -1)
		die(1, "%s", c->out->name);
}

void
output_skip(struct copier *c, uint64_t len)
{
	output_flush(c);
	if (lseek(c->out->fd, (off_t)len, SEEK_CUR) == -1)
		die(1, "%s", c->out->name);
	c->out->offset += len;
	count(c, 0, 0, 0);
}

void
output_seek(struct copier *c, uint64_t offset)
{
	output_flush(c);
	if (lseek(c->out->fd, (off_t)offset, SEEK_SET) == -1)
		die(1, "%s", c->out->name);
	c->out->offset = offset;
	if (c->reserved < offset)
		c->reserved = offset;
}

uint64_t
output_at(const struct copier *c)
{
	return c->out->offset + c->filled;
}

void
output_count_from(struct copier *c, uint64_t done)
{
	output_flush(c);
	c->done_before = done;
	c->done_from = c->out->offset;
}

void
output_start(struct copier *c)
{
	if (c->out->kind == IO_FILE && c->can_rewrite &&
	    ftruncate(c->out->fd, (off_t)c->out->offset) == -1)
		die(1, "%s", c->out->name);
}

/*
 * BLKZEROOUT of the len bytes where the device stands: 0, -1 if the
 * device will not (write the zeros then), -2 on an error.
 */
static int
zero_device(struct io *out, uint64_t len)
{
	uint64_t range[2] = { out->offset, len };

	if (ioctl(out->fd, BLKZEROOUT, range) == 0)
		return 0;
	return errno == EINVAL || errno == EOPNOTSUPP || errno == ENOTTY ? -1 : -2;
}

void
output_hole(struct copier *c, uint64_t len)
{
	int zeroed;

	if (c->out->kind == IO_FILE && c->can_rewrite) {
		output_skip(c, len);
		return;
	}
	if (c->out->kind == IO_BLOCK) {
		output_flush(c);
		if ((zeroed = zero_device(c->out, len)) == -2)
			die(1, "%s", c->out->name);
		if (zeroed == 0) {
			output_skip(c, len);
			return;
		}
	}
	output_zeros(c, len);
	output_flush(c);
}

/* What a file held past where the writing ended is not the output's. */
void
output_end(struct copier *c)
{
	output_flush(c);
	if (c->out->kind == IO_FILE && c->can_rewrite &&
	    ftruncate(c->out->fd, (off_t)c->out->offset) == -1)
		die(1, "%s", c->out->name);
}

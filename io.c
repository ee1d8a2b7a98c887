/*
 * io.c: one end of sqcow2 as a descriptor: probed, read and written
 * whole, its data found by SEEK_DATA; see io.h.
 */
#define _GNU_SOURCE

#include <sys/ioctl.h>
#include <sys/stat.h>

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include <linux/fs.h>		/* BLKGETSIZE64 */

#include "io.h"
#include "report.h"

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

int
io_again(int fd, short events)
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
io_read(struct io *in, void *buf, size_t len)
{
	size_t done = take_peeked(in, buf, len);

	while (done < len) {
		ssize_t n = read(in->fd, (char *)buf + done, len - done);

		if (n == 0)
			break;
		if (n < 0) {
			if (io_again(in->fd, POLLIN))
				continue;
			die(1, "%s", in->name);
		}
		done += (size_t)n;
	}
	return done;
}

void
io_write(struct io *out, const void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = write(out->fd, (const char *)buf + done, len - done);

		if (n < 0 && io_again(out->fd, POLLOUT))
			continue;
		if (n == 0)
			errno = ENOSPC;
		if (n <= 0)
			die(1, "%s", out->name);
		done += (size_t)n;
	}
}

void
io_pread(struct io *io, void *buf, size_t len, uint64_t offset)
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

int
io_find_data(struct io *io, uint64_t offset, uint64_t *data, uint64_t *hole)
{
	off_t found;

	if ((found = lseek(io->fd, (off_t)offset, SEEK_DATA)) == -1)
		return errno == ENXIO ? 0 : -1;
	*data = (uint64_t)found;
	if ((found = lseek(io->fd, found, SEEK_HOLE)) == -1)
		return -1;
	*hole = (uint64_t)found;
	return 1;
}

/* EINVAL or EOPNOTSUPP: the file system cannot tell data from holes. */
int
io_cannot_tell(int error)
{
	return error == EINVAL || error == EOPNOTSUPP;
}

void
data_ranges(struct io *in, uint64_t size, struct range_list *list)
{
	uint64_t offset = 0, data, hole;
	int found = 0;

	while (offset < size && (found = io_find_data(in, offset, &data, &hole)) == 1 &&
	    data < size) {
		if (hole > size)
			hole = size;
		if (ranges_add(list, data, hole - data) == -1)
			die(1, "%s", in->name);
		offset = hole;
	}
	if (offset < size && found == -1) {
		if (!io_cannot_tell(errno))
			die(1, "%s", in->name);
		/* All of it may be data. */
		list->n = 0;
		if (size > 0 && ranges_add(list, 0, size) == -1)
			die(1, "%s", in->name);
	}
	if (lseek(in->fd, 0, SEEK_SET) == -1)
		die(1, "%s", in->name);
}

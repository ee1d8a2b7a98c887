/*
 * fault.c: an LD_PRELOAD library for the tests that makes the kernel
 * difficult: short reads and writes, EINTR, and a disk that fills up.
 * Only standard input, standard output and files written are touched:
 * stdio's reading of the range file and the messages on stderr are not.
 *
 *	FAULTS="short eintr"	 every call moves a few bytes, or is interrupted
 *	FAULTS="enospc=N"	 writes fail with ENOSPC once N bytes are written
 *	FAULTS="eio=N"		 reading stdin fails with EIO after N bytes,
 *				 by read, splice or copy_file_range
 */
#define _GNU_SOURCE

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * Each wrapper finds the real call with dlsym; POSIX's way to turn its
 * void * into a function pointer is to store through a void ** alias.
 */

static int short_counts, interrupts;
static long long enospc_after = -1, eio_after = -1;
static long long written, read_so_far;
static uint32_t state = 2463534242u;

static void
configure(void)
{
	static int done;
	const char *faults, *n;

	if (done)
		return;
	done = 1;
	if ((faults = getenv("FAULTS")) == NULL)
		return;
	short_counts = strstr(faults, "short") != NULL;
	interrupts = strstr(faults, "eintr") != NULL;
	if ((n = strstr(faults, "enospc=")) != NULL)
		enospc_after = atoll(n + 7);
	if ((n = strstr(faults, "eio=")) != NULL)
		eio_after = atoll(n + 4);
}

static uint32_t
next_random(void)
{
	state ^= state << 13;
	state ^= state >> 17;
	state ^= state << 5;
	return state;
}

/* One call in three is interrupted before it does anything. */
static int
interrupted(void)
{
	if (interrupts && next_random() % 3 == 0) {
		errno = EINTR;
		return 1;
	}
	return 0;
}

/* A short count: anything from 1 byte to all of it, mostly small. */
static size_t
shorten(size_t len)
{
	size_t most;

	if (!short_counts || len <= 1)
		return len;
	most = (size_t)1 << (next_random() % 21);
	most = 1 + next_random() % most;
	return most < len ? most : len;
}

/* Whether stdin has given all it may before it fails. */
static int
read_fails(int fd)
{
	if (fd == STDIN_FILENO && eio_after >= 0 && read_so_far >= eio_after) {
		errno = EIO;
		return 1;
	}
	return 0;
}

/* Clip len to what the disk takes before it is full; 1 if it is full. */
static int
disk_full(size_t *len)
{
	if (enospc_after < 0)
		return 0;
	if (written >= enospc_after) {
		errno = ENOSPC;
		return 1;
	}
	if ((long long)*len > enospc_after - written)
		*len = (size_t)(enospc_after - written);
	return 0;
}

ssize_t
read(int fd, void *buf, size_t len)
{
	static ssize_t (*real)(int, void *, size_t);
	ssize_t n;

	configure();
	if (real == NULL)
		*(void **)&real = dlsym(RTLD_NEXT, "read");
	if (fd != STDIN_FILENO)
		return real(fd, buf, len);
	if (interrupted() || read_fails(fd))
		return -1;
	if ((n = real(fd, buf, shorten(len))) > 0)
		read_so_far += n;
	return n;
}

ssize_t
write(int fd, const void *buf, size_t len)
{
	static ssize_t (*real)(int, const void *, size_t);
	ssize_t n;

	configure();
	if (real == NULL)
		*(void **)&real = dlsym(RTLD_NEXT, "write");
	if (fd == STDERR_FILENO)
		return real(fd, buf, len);
	if (interrupted())
		return -1;
	len = shorten(len);
	if (disk_full(&len))
		return -1;
	if ((n = real(fd, buf, len)) > 0)
		written += n;
	return n;
}

/* splice and copy_file_range take the same arguments, and the same faults. */
typedef ssize_t move_call(int, loff_t *, int, loff_t *, size_t, unsigned);

static ssize_t
faulty_move(move_call *real, int in, loff_t *in_offset, int out,
    loff_t *out_offset, size_t len, unsigned flags)
{
	ssize_t n;

	configure();
	if (interrupted() || read_fails(in))
		return -1;
	len = shorten(len);
	if (disk_full(&len))
		return -1;
	if ((n = real(in, in_offset, out, out_offset, len, flags)) > 0) {
		written += n;
		if (in == STDIN_FILENO)
			read_so_far += n;
	}
	return n;
}

ssize_t
splice(int in, loff_t *in_offset, int out, loff_t *out_offset, size_t len,
    unsigned flags)
{
	static move_call *real;

	if (real == NULL)
		*(void **)&real = dlsym(RTLD_NEXT, "splice");
	return faulty_move(real, in, in_offset, out, out_offset, len, flags);
}

ssize_t
copy_file_range(int in, loff_t *in_offset, int out, loff_t *out_offset,
    size_t len, unsigned flags)
{
	static move_call *real;

	if (real == NULL)
		*(void **)&real = dlsym(RTLD_NEXT, "copy_file_range");
	return faulty_move(real, in, in_offset, out, out_offset, len, flags);
}

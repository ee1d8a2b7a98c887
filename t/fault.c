/*
 * fault.c: an LD_PRELOAD library for the tests that makes the kernel
 * difficult: short reads and writes, EINTR, EAGAIN, a disk that fills up,
 * and fast paths that the kernel refuses.  Short counts, EINTR, EAGAIN
 * and EIO touch only standard input and standard output and files
 * written: stdio's reading of the range file and the messages on stderr
 * are not.
 *
 *	FAULTS="short eintr"	 every call moves a few bytes, or is interrupted
 *	FAULTS="eagain"		 one call in three fails with EAGAIN, as on a
 *				 non-blocking descriptor that is not ready
 *	FAULTS="enospc=N"	 writes fail with ENOSPC once N bytes are written
 *	FAULTS="eio=N"		 reading stdin fails with EIO after N bytes,
 *				 by read, splice or copy_file_range
 *	FAULTS="console"	 standard error is a terminal (isatty), for
 *				 the console form of -p
 *	FAULTS="clock=MS"	 the monotonic clock moves MS milliseconds at
 *				 each reading, and at no other time: -p then
 *				 updates as often as a test wants, whatever
 *				 the machine's speed
 *	FAULTS="refuse=LIST"	 the kernel refuses each fast path in LIST,
 *				 comma-separated, as a real one does:
 *				 splice (EINVAL), copy_file_range (EXDEV),
 *				 seek_data (SEEK_DATA and SEEK_HOLE: EINVAL),
 *				 pipe_size (F_SETPIPE_SZ: EPERM), fallocate
 *				 (EOPNOTSUPP), fsync (EIO); NAME:ERRNO gives
 *				 another errno, one of EINVAL EXDEV EOPNOTSUPP
 *				 ENOSYS EPERM EIO
 */
#define _GNU_SOURCE
/* Both the plain and the 64-bit names are defined here, so neither may
 * be redirected to the other. */
#undef _FILE_OFFSET_BITS

#include <dlfcn.h>
#include <time.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * Each wrapper finds the real call with dlsym; POSIX's way to turn its
 * void * into a function pointer is to store through a void ** alias.
 */

static int short_counts, interrupts, eagain, console;
static const char *refusals;
static long long enospc_after = -1, eio_after = -1, clock_step_ms = -1;
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
	eagain = strstr(faults, "eagain") != NULL;
	console = strstr(faults, "console") != NULL;
	if ((n = strstr(faults, "refuse=")) != NULL)
		refusals = n + 7;
	if ((n = strstr(faults, "enospc=")) != NULL)
		enospc_after = atoll(n + 7);
	if ((n = strstr(faults, "eio=")) != NULL)
		eio_after = atoll(n + 4);
	if ((n = strstr(faults, "clock=")) != NULL)
		clock_step_ms = atoll(n + 6);
}

static uint32_t
next_random(void)
{
	state ^= state << 13;
	state ^= state >> 17;
	state ^= state << 5;
	return state;
}

/* One call in three is interrupted, or not ready, before it does anything. */
static int
interrupted(void)
{
	if (interrupts && next_random() % 3 == 0) {
		errno = EINTR;
		return 1;
	}
	if (eagain && next_random() % 3 == 0) {
		errno = EAGAIN;
		return 1;
	}
	return 0;
}

static const struct {
	const char *name;
	int value;
} errnos[] = {
	{ "EINVAL", EINVAL }, { "EXDEV", EXDEV }, { "EOPNOTSUPP", EOPNOTSUPP },
	{ "ENOSYS", ENOSYS }, { "EPERM", EPERM }, { "EIO", EIO },
};

/*
 * Whether the fast path named is refused; if so errno is what the kernel
 * says, the default or the one given after a colon.
 */
static int
refuse(const char *path, int default_errno)
{
	size_t len = strlen(path);
	const char *p;

	configure();
	for (p = refusals; p != NULL && (p = strstr(p, path)) != NULL; p += len) {
		if ((p != refusals && p[-1] != ',') ||
		    (p[len] != '\0' && p[len] != ',' && p[len] != ':' && p[len] != ' '))
			continue;
		errno = default_errno;
		if (p[len] == ':')
			for (size_t i = 0; i < sizeof(errnos) / sizeof(*errnos); i++)
				if (strncmp(p + len + 1, errnos[i].name,
				    strlen(errnos[i].name)) == 0)
					errno = errnos[i].value;
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
	if (refuse("splice", EINVAL))
		return -1;
	return faulty_move(real, in, in_offset, out, out_offset, len, flags);
}

ssize_t
copy_file_range(int in, loff_t *in_offset, int out, loff_t *out_offset,
    size_t len, unsigned flags)
{
	static move_call *real;

	if (real == NULL)
		*(void **)&real = dlsym(RTLD_NEXT, "copy_file_range");
	if (refuse("copy_file_range", EXDEV))
		return -1;
	return faulty_move(real, in, in_offset, out, out_offset, len, flags);
}

/*
 * With _FILE_OFFSET_BITS=64 the program calls the 64-bit names; both are
 * caught, in case a libc or a build calls the other.
 */
static off_t
faulty_lseek(const char *name, int fd, off_t offset, int whence)
{
	off_t (*real)(int, off_t, int);

	*(void **)&real = dlsym(RTLD_NEXT, name);
	if ((whence == SEEK_DATA || whence == SEEK_HOLE) && refuse("seek_data", EINVAL))
		return -1;
	return real(fd, offset, whence);
}

off_t
lseek(int fd, off_t offset, int whence)
{
	return faulty_lseek("lseek", fd, offset, whence);
}

off64_t
lseek64(int fd, off64_t offset, int whence)
{
	return faulty_lseek("lseek64", fd, offset, whence);
}

static int
faulty_fallocate(const char *name, int fd, int mode, off_t offset, off_t len)
{
	int (*real)(int, int, off_t, off_t);

	*(void **)&real = dlsym(RTLD_NEXT, name);
	if (refuse("fallocate", EOPNOTSUPP))
		return -1;
	return real(fd, mode, offset, len);
}

int
fallocate(int fd, int mode, off_t offset, off_t len)
{
	return faulty_fallocate("fallocate", fd, mode, offset, len);
}

int
fallocate64(int fd, int mode, off64_t offset, off64_t len)
{
	return faulty_fallocate("fallocate64", fd, mode, offset, len);
}

/* fcntl's third argument is an int or a pointer: passed on as a pointer. */
static int
faulty_fcntl(const char *name, int fd, int cmd, void *arg)
{
	int (*real)(int, int, ...);

	*(void **)&real = dlsym(RTLD_NEXT, name);
	if (cmd == F_SETPIPE_SZ && refuse("pipe_size", EPERM))
		return -1;
	return real(fd, cmd, arg);
}

int
fcntl(int fd, int cmd, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, cmd);
	arg = va_arg(ap, void *);
	va_end(ap);
	return faulty_fcntl("fcntl", fd, cmd, arg);
}

int
fcntl64(int fd, int cmd, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, cmd);
	arg = va_arg(ap, void *);
	va_end(ap);
	return faulty_fcntl("fcntl64", fd, cmd, arg);
}

int
fsync(int fd)
{
	static int (*real)(int);

	if (real == NULL)
		*(void **)&real = dlsym(RTLD_NEXT, "fsync");
	if (refuse("fsync", EIO))
		return -1;
	return real(fd);
}

int
isatty(int fd)
{
	static int (*real)(int);

	configure();
	if (console && fd == STDERR_FILENO)
		return 1;
	if (real == NULL)
		*(void **)&real = dlsym(RTLD_NEXT, "isatty");
	return real(fd);
}

int
clock_gettime(clockid_t id, struct timespec *ts)
{
	static int (*real)(clockid_t, struct timespec *);
	static long long readings;
	long long ms;

	configure();
	if (clock_step_ms < 0 || id != CLOCK_MONOTONIC) {
		if (real == NULL)
			*(void **)&real = dlsym(RTLD_NEXT, "clock_gettime");
		return real(id, ts);
	}
	ms = clock_step_ms * readings++;
	ts->tv_sec = 1000 + ms / 1000;
	ts->tv_nsec = ms % 1000 * 1000000;
	return 0;
}

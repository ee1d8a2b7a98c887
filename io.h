/*
 * io.h: one end of sqcow2, the input or the output, as a descriptor: what
 * it is, and whole reads and writes of it.  Short counts, EINTR and EAGAIN
 * are retried here; every other failure is reported in one line naming
 * the end, and exits.  The copier (copier.h) moves bytes between two
 * ends; files.h opens and closes them.
 */
#ifndef IO_H
#define IO_H

#include <stddef.h>
#include <stdint.h>

#include "range_list.h"

#define IO_SIZE		(1u << 20)	/* large enough to amortise a syscall */
#define IO_PEEK		72		/* what tells an image format from a disk */

/* What a descriptor is, as io_probe finds it. */
enum io_kind { IO_OTHER, IO_PIPE, IO_FILE, IO_BLOCK };

/* The input or the output: a descriptor, its name in messages, its kind. */
struct io {
	int fd;
	const char *name;	/* "stdin", "stdout", or the path given */
	enum io_kind kind;
	uint64_t size;		/* input: the disk's size; a file's or device's else */
	uint64_t offset;	/* bytes consumed or skipped; the next write's place */
	int in_place;		/* an output named by -o and written in place */
	int replaces;		/* -o's temporary file will be renamed over a file: */
	uint64_t replaced_dev, replaced_ino;	/* that one, links followed */
	unsigned char peeked[IO_PEEK];	/* a pipe's first bytes, read to be looked */
	size_t npeeked;			/* at and not yet given out */
};

/* Fill io's kind, and its size if it is a file or a block device. */
void io_probe(struct io *io);
int io_seekable(const struct io *io);

/*
 * io_read reads until len bytes or the end of the input, and returns the
 * bytes read: fewer only at the end (a pipe's peeked bytes come first).
 * io_write writes all len bytes; a write of none is a full disk.
 * io_pread reads len bytes at offset of a file or device, zeros past its
 * end, and does not move it.  None of them counts what it moved.
 */
size_t io_read(struct io *in, void *buf, size_t len);
void io_write(struct io *out, const void *buf, size_t len);
void io_pread(struct io *io, void *buf, size_t len, uint64_t offset);

/*
 * After a call on fd failed: whether to make it again (EINTR, or EAGAIN on
 * a descriptor left non-blocking, once poll says it is ready for events).
 */
int io_again(int fd, short events);

/* Offset of the first non-zero byte of p[0..len), or len if there is none. */
size_t first_nonzero(const unsigned char *p, size_t len);

/*
 * The first data at or after offset of a file, by SEEK_DATA: 1 with *data
 * and *hole (where it ends) set, 0 if only holes follow, -1 with errno
 * set.  io_cannot_tell says whether that errno means the file system
 * cannot tell data from holes.  The offset of the file moves.
 */
int io_find_data(struct io *io, uint64_t offset, uint64_t *data, uint64_t *hole);
int io_cannot_tell(int error);

/*
 * The data ranges of the first size bytes of in, by SEEK_DATA and
 * SEEK_HOLE; where the file system cannot tell, all of it.  Leaves the
 * offset at 0.
 */
void data_ranges(struct io *in, uint64_t size, struct range_list *list);

#endif

/*
 * io.h: the byte mover.  It knows nothing of qcow2: it reads the input,
 * writes the output, skips what nobody needs by seeking or reading, moves
 * data in the kernel where it can, checks bytes for zeros, finds holes
 * with SEEK_DATA, keeps the count of all of it for -p and -v, and makes
 * the temporary file of -o.  Every failure is reported here, in one line
 * naming the input or the output, and exits: callers only move bytes.
 */
#ifndef IO_H
#define IO_H

#include <stddef.h>
#include <stdint.h>

#include "ranges.h"
#include "report.h"

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

/*
 * Bytes on their way from in to out.  buffer gathers what is to be
 * written; scratch holds bytes read only to be checked for zeros.
 */
struct copier {
	struct io *in, *out;
	int check_zeros;	/* bytes dropped must be zero: no backing file */
	int seek_data;		/* the input finds its holes with SEEK_DATA */
	int use_copy_range;	/* copy_file_range(2) between two regular files */
	int use_splice;		/* splice(2) where one side is a pipe */
	int use_fallocate;	/* a regular output: reserve blocks ahead */
	int can_rewrite;	/* a regular output, not appended to: it can
				   seek back and write a cluster again */
	int progress_by_output;	/* -p counts the output's bytes, not the input's */
	int no_reserving;	/* fallocate refused: reserve_span stops */
	unsigned char *buffer;
	size_t buffer_size;
	size_t filled;		/* bytes of buffer not yet written */
	unsigned char *scratch;
	uint64_t reserved;	/* blocks of output reserved up to here */
	uint64_t bytes_read, bytes_skipped, bytes_written;
};

/*
 * Open /dev/null on whichever of descriptors 0, 1 and 2 is closed, before
 * anything else is opened, and ignore SIGPIPE and SIGXFSZ so that a closed
 * reader or ulimit -f is an error to report.  need_standard exits with
 * EBADF if fd (0 or 1) was closed, for when it carries the data.
 */
void io_start(void);
void need_standard(int fd, const char *name);
int stdin_was_closed(void);

/*
 * The raw disk or the image to read: path, or stdin if it is NULL or
 * "-", at its start wherever whoever opened it left it.  A terminal on
 * stdin is refused.  same_file tells whether in is the very file out is,
 * or the file that out will be renamed over, by whatever name.
 */
void open_input(const char *path, struct io *in);
int same_file(const struct io *in, const struct io *out);

/*
 * A raw disk that begins as a qcow2 image (or another format QEMU knows)
 * is an image given by mistake: exit saying that reader (such as "-d")
 * reads it, or that -f raw takes it as a disk.  A pipe's first bytes are
 * read for this and kept: the input gives them again, in order.
 */
void refuse_image_input(struct io *in, const char *reader);

/* Fill io's kind, and its size if it is a file or a block device. */
void io_probe(struct io *io);
int io_seekable(const struct io *io);

/*
 * Read until len bytes or the end of the input; returns the bytes read.
 * Write all len bytes.  Both retry short counts, EINTR and EAGAIN, and
 * exit on an error; neither counts what it moved.
 */
size_t read_full(struct io *in, void *buf, size_t len);
void write_full(struct io *out, const void *buf, size_t len);

/* Flush standard output and exit on a write error, or if it was closed. */
void flush_stdout(void);

/*
 * Ready c to move from in to out, with buffers for clusters of up to
 * cluster_size bytes, and choose how data will move: in the kernel where
 * in and out allow it.  c_free gives the buffers back.
 */
void copier_init(struct copier *c, struct io *in, struct io *out,
    size_t cluster_size);
void copier_free(struct copier *c);

/*
 * The input, as the disk: read exactly len bytes (fewer means it ended
 * before its size), copy len bytes to the output, check len bytes are
 * zero, or get past len bytes that nobody needs.  skip_unstored gets past
 * len bytes of no stored cluster: skipped if they are holes, else read
 * and, unless over a backing file, checked for zeros.  finish_input does
 * so up to the input's size and checks that it ends there.
 */
void read_exact(struct copier *c, void *buf, size_t len);
void copy_bytes(struct copier *c, uint64_t len);
void skip_unstored(struct copier *c, uint64_t len);
void finish_input(struct copier *c);

/* Move the input to offset by seeking, counted as skipped. */
void seek_input(struct copier *c, uint64_t offset);

/* Get past len bytes that the input must have: seek, or read them. */
void skip_input(struct copier *c, uint64_t len);

/*
 * For a decoder, which may meet the end of its input where it is allowed
 * to: read up to len bytes, copy up to len bytes to the output, or get
 * past up to len bytes; each returns the bytes it did, fewer only at the
 * input's end.  move_input seeks a seekable input anywhere, back too.
 */
size_t read_some(struct copier *c, void *buf, size_t len);
uint64_t copy_some(struct copier *c, uint64_t len);
uint64_t skip_some(struct copier *c, uint64_t len);
void move_input(struct copier *c, uint64_t offset);

/*
 * len bytes of the output that read as zeros: a hole in a regular file
 * (skipped by seeking; end_output gives the file its size), zeroed on a
 * block device (BLKZEROOUT, else written), written elsewhere.  A regular
 * output is first cut where the writing starts, so that no hole shows
 * what the file held before.
 */
void start_output(struct copier *c);
void zero_output(struct copier *c, uint64_t len);
void end_output(struct copier *c);

/* Move a seekable output len bytes on, leaving them as they are. */
void skip_output(struct copier *c, uint64_t len);

/*
 * The first data at or after the input's offset, by SEEK_DATA: 1 with
 * *data and *hole (where it ends) set, 0 if only holes follow.  A file
 * system that cannot tell gives -1, and SEEK_DATA is not asked again.
 * The input's offset is left where it was.
 */
int next_data(struct copier *c, uint64_t *data, uint64_t *hole);

/*
 * The buffer: write_zeros and the output's bytes go through it.
 * flush_buffer writes what it holds; reserve_output reserves the output's
 * blocks up to end first (exact: end is the image's end, so a full disk is
 * an error now rather than later).
 */
void write_zeros(struct copier *c, uint64_t len);
void flush_buffer(struct copier *c);
void reserve_output(struct copier *c, uint64_t end, int exact);

/*
 * Reserve the len bytes of a regular output from where it stands, and
 * those alone, for a writer that leaves holes around them (-d): ext4 then
 * allocates large extents.  A refusal only stops the reserving.
 */
void reserve_span(struct copier *c, uint64_t len);

/*
 * Write len bytes again at offset of an output that can_rewrite, and come
 * back to where it was; they were counted the first time.
 */
void rewrite_output(struct copier *c, uint64_t offset, const void *buf, size_t len);

/* Write len bytes to the output, after what the buffer holds; counted. */
void write_out(struct copier *c, const void *buf, size_t len);

/*
 * Copy up to len bytes of a regular input, from offset, to where a
 * regular output stands, in the kernel: copy_file_range(2) shares the
 * extents on XFS and btrfs instead of writing the bytes again.  The input
 * does not move.  Returns the bytes copied: fewer at the input's end, or
 * when the kernel refuses, and the caller writes the rest itself.
 */
uint64_t share_range(struct copier *c, uint64_t offset, uint64_t len);

/*
 * len bytes of a file or block device at offset, zeros past its end, by
 * pread: the input is not moved.  For --diff's previous disk.
 */
void read_at(struct io *io, void *buf, size_t len, uint64_t offset);

/* Offset of the first non-zero byte of p[0..len), or len if there is none. */
size_t first_nonzero(const unsigned char *p, size_t len);

/*
 * The data ranges of the first size bytes of in, by SEEK_DATA and
 * SEEK_HOLE; where the file system cannot tell, all of it.  Leaves the
 * offset at 0.
 */
void data_ranges(struct io *in, uint64_t size, struct range_list *list);

/*
 * -o FILE, or standard output (path NULL).  Standard output, a device, a
 * FIFO, or a name under /dev or /proc is written in place, in the stream
 * form; any other FILE is built in a temporary file beside it, renamed
 * over it by commit_output, and removed on any failure or fatal signal
 * before that.  Returns whether the output is such a new file, which can
 * be written out of order.  A terminal is refused.
 */
int open_output(const char *path, struct io *out);
void commit_output(struct io *out, int durable);

/*
 * An output opened in place is cut to nothing only here, once the input
 * has been seen not to be the same file.  is_stderr tells whether the
 * output is where stderr goes too (2>&1), where -p and -v would land.
 */
void ready_output(struct io *out);
int is_stderr(const struct io *out);

/* Exit with EBADF if path names descriptor 0, 1 or 2 and it was closed. */
void refuse_closed(const char *path);

/*
 * Whether the open file fd is the output.  refuse_own_backing exits
 * (usage) when -o output names the file that backing_file, read from
 * output's directory as QEMU reads it, names too, or, with output NULL
 * or "-", when a regular file on stdout is backing_file.
 */
int is_output(int fd, const struct io *out);
void refuse_own_backing(const char *output, const char *backing_file);

/*
 * The image's header has been written at offset of out, which stays in
 * place: should the run still fail, its magic is wiped on the way out, so
 * that no failed run leaves what opens as an image.  commit_output ends
 * the guard.
 */
void guard_header(struct io *out, uint64_t offset);

#endif

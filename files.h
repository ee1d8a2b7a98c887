/*
 * files.h: the two ends of sqcow2 opened and closed: the standard
 * descriptors made safe first, the input opened and looked at, the
 * output opened (standard output, a device written in place, or -o's
 * temporary file) and, once complete, committed: renamed into place,
 * made durable.  Whatever cannot be right about them (a terminal, the
 * input that is the output, an image given as a disk, an image that is
 * its own backing file) is refused here, before a byte is written.
 */
#ifndef FILES_H
#define FILES_H

#include <stdint.h>

#include "io.h"

/*
 * Open /dev/null on whichever of descriptors 0, 1 and 2 is closed, before
 * anything else is opened, and ignore SIGPIPE and SIGXFSZ so that a closed
 * reader or ulimit -f is an error to report.  need_standard exits with
 * EBADF if fd (0 or 1) was closed, for when it carries the data.
 */
void io_start(void);
void need_standard(int fd, const char *name);
int stdin_was_closed(void);

/* Exit with EBADF if path names descriptor 0, 1 or 2 and it was closed. */
void refuse_closed(const char *path);

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

/* Flush standard output and exit on a write error, or if it was closed. */
void flush_stdout(void);

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
void guard_header(const struct io *out, uint64_t offset);

#endif

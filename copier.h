/*
 * copier.h: bytes on their way from the input to the output, counted.
 * It knows nothing of qcow2.  It reads the input as the disk, skips what
 * nobody needs by seeking or reading, checks the bytes dropped for zeros,
 * moves data in the kernel where the two ends allow it (splice,
 * copy_file_range), gathers small writes in its buffer, and keeps the
 * count of all of it for -p and -v.  Every failure is reported in one
 * line naming the input or the output, and exits: callers only move
 * bytes.  The copier is opaque; its two ends stay the caller's.
 */
#ifndef COPIER_H
#define COPIER_H

#include <stddef.h>
#include <stdint.h>

#include "io.h"

struct copier;

/* How the copier is to treat its ends. */
enum {
	COPY_CHECK_ZEROS = 1,	/* bytes dropped must be zero: no backing file */
	COPY_NO_RESERVE = 2,	/* reserve no blocks ahead: a raw disk keeps its holes */
	COPY_OUTPUT_PROGRESS = 4,	/* -p counts the output's bytes, not the input's */
};

/*
 * A copier from in to out, with a buffer of at least cluster_size bytes,
 * moving data in the kernel where in and out allow it.  Both ends must
 * outlive it.  copier_free gives its memory back.
 */
struct copier *copier_new(struct io *in, struct io *out, size_t cluster_size,
    int flags);
void copier_free(struct copier *c);

/* The two ends, to read where each stands and what it is. */
const struct io *input_of(const struct copier *c);
const struct io *output_of(const struct copier *c);

/* What it moved: for -v. */
struct copy_counts {
	uint64_t read, skipped, written;
};
const struct copy_counts *copier_counts(const struct copier *c);

/*
 * Whether the output can go back and write again (a regular file or a
 * device not opened to append), and whether the two ends share extents
 * (copy_file_range between two regular files).
 */
int output_can_rewrite(const struct copier *c);
int copier_shares(const struct copier *c);

/*
 * The input, as the disk.  input_read reads up to len bytes, fewer only
 * at its end; input_read_exact exactly len (fewer means the input ended
 * before its size, which exits).  input_copy copies up to len bytes to
 * the output, input_copy_exact exactly len.  input_skip gets past up to
 * len bytes, by seeking or reading; input_skip_exact exactly len;
 * input_drain reads and drops len bytes even of a file, fewer only at
 * its end, for -t.  The ones that may stop short return what they did.
 */
size_t input_read(struct copier *c, void *buf, size_t len);
void input_read_exact(struct copier *c, void *buf, size_t len);
uint64_t input_copy(struct copier *c, uint64_t len);
void input_copy_exact(struct copier *c, uint64_t len);
uint64_t input_skip(struct copier *c, uint64_t len);
void input_skip_exact(struct copier *c, uint64_t len);
uint64_t input_drain(struct copier *c, uint64_t len);

/*
 * len bytes of no stored cluster: holes skipped; the rest read and,
 * unless over a backing file, checked for zeros.  input_finish does so
 * up to the input's size, and checks that it ends there.
 */
void input_pass_unstored(struct copier *c, uint64_t len);
void input_finish(struct copier *c);

/*
 * Move a seekable input: input_seek forward to offset, counted as
 * skipped; input_move anywhere, back too (a decoder's reads by offset).
 */
void input_seek(struct copier *c, uint64_t offset);
void input_move(struct copier *c, uint64_t offset);

/*
 * The first data at or after where the input stands, by SEEK_DATA: 1
 * with *data and *hole (where it ends) set, 0 if only holes follow, -1 if
 * the file system cannot tell (SEEK_DATA is then not asked again).  The
 * input does not move.
 */
int input_next_data(struct copier *c, uint64_t *data, uint64_t *hole);

/*
 * The next len bytes of a regular input, where it stands, seen through a
 * mapping rather than read into a buffer: the check of a cluster that
 * holds data then touches the page of its first non-zero byte alone.
 * They count as read, and the input moves past them.  NULL (nothing
 * done) for anything but a regular file that holds all len bytes: the
 * caller reads them then.  The bytes stay mapped until the next
 * input_map, input_unmap or copier_free.
 */
const unsigned char *input_map(struct copier *c, size_t len);
void input_unmap(struct copier *c);

/*
 * Copy up to len bytes of a regular input, from offset, to where a
 * regular output stands, in the kernel: copy_file_range shares the
 * extents on XFS and btrfs instead of writing the bytes again.  The input
 * does not move.  Returns the bytes copied: fewer at the input's end, or
 * when the kernel refuses, and the caller writes the rest itself.
 */
uint64_t input_share(struct copier *c, uint64_t offset, uint64_t len);

/*
 * The output.  output_write writes len bytes after what the buffer
 * holds; output_zeros len zeros, through the buffer.  output_slot gives
 * len bytes of the buffer to fill, which are the output next; output_cut
 * takes back the last len bytes given, unwritten.  output_flush writes
 * what the buffer holds.  All are counted.
 */
void output_write(struct copier *c, const void *buf, size_t len);
void output_zeros(struct copier *c, uint64_t len);
unsigned char *output_slot(struct copier *c, size_t len);
void output_cut(struct copier *c, size_t len);
void output_flush(struct copier *c);

/*
 * The free room of the buffer, at least a cluster of it, for a reader to
 * fill in place, or to use as scratch: *room gets its size.  The bytes of
 * it that output_keep names, in order, are the output next, moved down
 * to where the output stands if a gap is before them; the others are
 * not.  Any other call to the copier may reuse the room.
 */
unsigned char *output_room(struct copier *c, size_t *room);
void output_keep(struct copier *c, const unsigned char *bytes, size_t len);

/*
 * Reserve the output's blocks up to end before writing them (exact: end
 * is the image's end, so a full disk is an error now rather than later).
 * output_reserve_span reserves the len bytes from where the output
 * stands, and those alone, for a writer that leaves holes around them;
 * the file's size does not change.  A refusal only stops the reserving.
 */
void output_reserve(struct copier *c, uint64_t end, int exact);
void output_reserve_span(struct copier *c, uint64_t len);

/*
 * For a writer that knows only that the output will end at limit or
 * before: when what is reserved runs short, reserve the next 64 MiB, up
 * to limit.  A refusal only stops the reserving.
 */
void output_reserve_ahead(struct copier *c, uint64_t limit);

/*
 * Write len bytes again at offset of an output that can rewrite, and
 * come back to where it was; they were counted the first time.
 */
void output_rewrite(struct copier *c, uint64_t offset, const void *buf, size_t len);

/*
 * A seekable output: output_skip moves it len bytes on, leaving them as
 * they are; output_seek moves it to offset, to write there next.
 */
void output_skip(struct copier *c, uint64_t len);
void output_seek(struct copier *c, uint64_t offset);

/*
 * Where the next byte written goes, buffered bytes counted.  For an
 * output written out of order, -p counts done bytes, then what is
 * written from where the output now stands (COPY_OUTPUT_PROGRESS).
 */
uint64_t output_at(const struct copier *c);
void output_count_from(struct copier *c, uint64_t done);

/*
 * len bytes of the output that read as zeros: a hole in a regular file
 * (skipped by seeking; output_end gives the file its size), zeroed on a
 * block device (BLKZEROOUT, else written), written elsewhere.  A regular
 * output is first cut where the writing starts (output_start), so that
 * no hole shows what the file held before; output_end flushes, and cuts
 * it where the writing ended.
 */
void output_start(struct copier *c);
void output_hole(struct copier *c, uint64_t len);
void output_end(struct copier *c);

#endif

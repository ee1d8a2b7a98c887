/*
 * backing.h: the backing file that -b names, looked at as QEMU will look
 * at it when it opens the image: the name resolved from the image's
 * directory, the format told by the file's first bytes, the size of the
 * disk it holds.  A name that cannot be right is refused before a byte of
 * the image is written.
 */
#ifndef BACKING_H
#define BACKING_H

#include <stddef.h>
#include <stdint.h>

/* Whether fmt is the name of an image format QEMU opens, for -F. */
int is_qemu_format(const char *fmt);

/*
 * The format that the first len bytes of a file say it has, as QEMU's
 * probe tells it: "qcow2", "vmdk", ..., or "raw" for none of them.
 */
const char *format_of(const unsigned char *p, size_t len);

/* What check_backing found. */
struct backing {
	const char *format;	/* told by its first bytes */
	uint64_t disk_size;	/* of the disk it holds; 0: not known */
	int size_known;
};

/*
 * Look at backing_file as QEMU will: read from the directory of
 * image_path, the image's file (-o's FILE, or where a regular file on
 * stdout is; NULL where the image goes nowhere sqcow2 can see, as to a
 * pipe).  Exits, saying what -u skips, if it cannot be opened there or
 * holds another format than format (if given).  Returns 1 with *found
 * filled, or 0 if nothing could be looked at (image_path NULL, or a
 * protocol such as nbd: or http:).
 */
int check_backing(const char *backing_file, const char *format,
    const char *image_path, struct backing *found);

/*
 * The path of the regular file that standard output is, for a name QEMU
 * will read relative to it; NULL if it is none (a pipe, a device).  The
 * string is static.
 */
const char *stdout_path(void);

#endif

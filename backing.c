/*
 * backing.c: the backing file of an overlay, looked at before the image
 * is written (see backing.h): qemu-img create refuses a backing file it
 * cannot open, and so does sqcow2, unless -u says it will exist only
 * where the image goes.
 */
#define _GNU_SOURCE

#include <sys/ioctl.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/fs.h>		/* BLKGETSIZE64 */

#include "backing.h"
#include "qcow2.h"
#include "report.h"
#include "util.h"

#define PROBE_BYTES	512	/* enough for every magic below */

/* The image formats of qemu-img --help that a backing file may have. */
static const char *const qemu_formats[] = {
	"raw", "qcow2", "qcow", "qed", "vmdk", "vdi", "vpc", "vhdx",
	"parallels", "bochs", "cloop", "dmg", "luks", "vvfat", NULL
};

/* The magic each format's probe looks for, at an offset in the file. */
static const struct {
	const char *format;
	size_t offset, len;
	const char *magic;
} magics[] = {
	{ "qcow2",	0,  4, "QFI\xfb" },	/* version 2 or 3; 1 is qcow */
	{ "qed",	0,  4, "QED\0" },
	{ "vmdk",	0,  4, "KDMV" },
	{ "vmdk",	0,  4, "COWD" },
	{ "vmdk",	0, 21, "# Disk DescriptorFile" },
	{ "vdi",	64, 4, "\x7f\x10\xda\xbe" },
	{ "vpc",	0,  8, "conectix" },
	{ "vhdx",	0,  8, "vhdxfile" },
	{ "parallels",	0, 16, "WithoutFreeSpace" },
	{ "parallels",	0, 16, "WithouFreSpacExt" },
	{ "luks",	0,  6, "LUKS\xba\xbe" },
	{ "bochs",	0, 21, "Bochs Virtual HD Image" },
};

int
is_qemu_format(const char *fmt)
{
	for (size_t i = 0; qemu_formats[i] != NULL; i++)
		if (strcmp(fmt, qemu_formats[i]) == 0)
			return 1;
	return 0;
}

const char *
format_of(const unsigned char *p, size_t len)
{
	for (size_t i = 0; i < sizeof(magics) / sizeof(*magics); i++) {
		if (len < magics[i].offset + magics[i].len ||
		    memcmp(p + magics[i].offset, magics[i].magic, magics[i].len) != 0)
			continue;
		if (i == 0 && len >= 8 && get_be(p + HDR_VERSION, 4) == 1)
			return "qcow";
		return magics[i].format;
	}
	return "raw";
}

const char *
stdout_path(void)
{
	static char path[PATH_MAX];
	struct stat st;
	ssize_t len;

	if (fstat(STDOUT_FILENO, &st) == -1 || !S_ISREG(st.st_mode) ||
	    (len = readlink("/proc/self/fd/1", path, sizeof(path) - 1)) <= 0 ||
	    path[0] != '/')
		return NULL;
	path[len] = '\0';
	return path;
}

/*
 * A name QEMU opens through a protocol (nbd:..., http://...) rather than
 * as a file: a colon before any slash.
 */
static int
is_protocol(const char *name)
{
	const char *colon = strchr(name, ':');

	return colon != NULL && (strchr(name, '/') == NULL || colon < strchr(name, '/'));
}

/* backing_file as QEMU reads it: from the directory of image_path. */
static char *
resolve(const char *backing_file, const char *image_path)
{
	const char *slash = strrchr(image_path, '/');
	size_t dir = slash == NULL ? 0 : (size_t)(slash - image_path) + 1;
	char *path;

	if (backing_file[0] == '/' || dir == 0)
		path = strdup(backing_file);
	else if ((path = malloc(dir + strlen(backing_file) + 1)) != NULL) {
		memcpy(path, image_path, dir);
		strcpy(path + dir, backing_file);
	}
	if (path == NULL)
		die(1, "%s", backing_file);
	return path;
}

/* The size of the disk a backing file of that format holds, if known. */
static void
disk_size_of(int fd, const unsigned char *probe, size_t len, struct backing *found)
{
	struct stat st;
	uint64_t size;

	found->size_known = 0;
	if (strcmp(found->format, "qcow2") == 0 && len >= 32) {
		/* QEMU reads the size in whole sectors. */
		found->disk_size = get_be(probe + HDR_SIZE, 8) / 512 * 512;
		found->size_known = 1;
	} else if (strcmp(found->format, "raw") == 0 && fstat(fd, &st) == 0) {
		size = (uint64_t)st.st_size;
		if (S_ISBLK(st.st_mode) && ioctl(fd, BLKGETSIZE64, &size) == -1)
			return;
		found->disk_size = size;
		found->size_known = S_ISREG(st.st_mode) || S_ISBLK(st.st_mode);
	}
}

int
check_backing(const char *backing_file, const char *format,
    const char *image_path, struct backing *found)
{
	unsigned char probe[PROBE_BYTES];
	ssize_t len;
	char *path;
	int fd;

	if (image_path == NULL || is_protocol(backing_file))
		return 0;
	path = resolve(backing_file, image_path);
	if ((fd = open(path, O_RDONLY)) == -1)
		die(1, "-b %s (%s, from the image's directory, as QEMU will read "
		    "it; -u if it will exist only where the image goes)",
		    backing_file, path);
	while ((len = pread(fd, probe, sizeof(probe), 0)) == -1 && errno == EINTR)
		;
	if (len == -1)
		die(1, "%s", path);
	found->format = format_of(probe, (size_t)len);
	if (format != NULL && strcmp(format, found->format) != 0)
		diex(1, "-b %s is a %s file, not -F %s: QEMU would read it as %s",
		    backing_file, found->format, format, format);
	disk_size_of(fd, probe, (size_t)len, found);
	close(fd);
	free(path);
	return 1;
}

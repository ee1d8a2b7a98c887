/*
 * t/fuzz/replay.c: run a harness's LLVMFuzzerTestOneInput over kept
 * inputs without libFuzzer, so that make check replays the corpus.
 *
 *	replay [-v] FILE|DIR...
 *
 * Each argument is one input or a directory of them (its regular files,
 * in no set order, names beginning with a dot left out).  Prints TAP, one
 * line per argument; -v adds a comment naming each input before it runs.
 * A harness that finds an invariant broken aborts; the input it was
 * running is then named on stderr.
 */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"

static const char *volatile running;	/* the input being run, for on_abort */

static void
on_abort(int sig)
{
	static const char what[] = "replay: aborted on ";
	const char *path = running;

	if (path != NULL) {
		(void)!write(2, what, sizeof(what) - 1);
		(void)!write(2, path, strlen(path));
		(void)!write(2, "\n", 1);
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

/*
 * Run the input in the file at path, handed over in a buffer of exactly
 * its size as libFuzzer does, so that ASan sees a read past its end.
 * Returns 0, or -1 with errno set.
 */
static int
replay_file(const char *path, int verbose)
{
	unsigned char *buf = NULL, *exact;
	size_t len = 0, cap = 0, got;
	FILE *f;
	int error;

	if ((f = fopen(path, "rb")) == NULL)
		return -1;
	do {
		if (len == cap) {
			unsigned char *grown = realloc(buf, cap = cap ? 2 * cap : 4096);

			if (grown == NULL) {
				free(buf);
				fclose(f);
				errno = ENOMEM;
				return -1;
			}
			buf = grown;
		}
		got = fread(buf + len, 1, cap - len, f);
		len += got;
	} while (got > 0);
	error = ferror(f) ? errno : 0;
	fclose(f);
	if (error == 0 && (exact = malloc(len ? len : 1)) == NULL)
		error = ENOMEM;
	if (error != 0) {
		free(buf);
		errno = error;
		return -1;
	}
	memcpy(exact, buf, len);
	free(buf);
	if (verbose)
		printf("# %s\n", path);
	fflush(stdout);
	running = path;
	LLVMFuzzerTestOneInput(exact, len);
	running = NULL;
	free(exact);
	return 0;
}

/* Run every regular file in dir; counts them in *count.  Returns 0 or -1. */
static int
replay_dir(const char *dir, int verbose, unsigned long *count)
{
	DIR *d;
	struct dirent *e;
	int status = 0, error;

	if ((d = opendir(dir)) == NULL)
		return -1;
	while (status == 0 && (errno = 0, e = readdir(d)) != NULL) {
		size_t len = strlen(dir) + strlen(e->d_name) + 2;
		char *path;
		struct stat st;

		if (e->d_name[0] == '.')
			continue;
		if ((path = malloc(len)) == NULL) {
			errno = ENOMEM;
			status = -1;
			break;
		}
		snprintf(path, len, "%s/%s", dir, e->d_name);
		if (stat(path, &st) == -1)
			status = -1;
		else if (S_ISREG(st.st_mode) && (status = replay_file(path, verbose)) == 0)
			(*count)++;
		free(path);
	}
	if (status == 0 && errno != 0)
		status = -1;
	error = errno;
	closedir(d);
	errno = error;
	return status;
}

int
main(int argc, char **argv)
{
	int verbose = 0, failed = 0, first = 1;

	if (argc > 1 && strcmp(argv[1], "-v") == 0) {
		verbose = 1;
		first = 2;
	}
	if (first >= argc) {
		fprintf(stderr, "usage: %s [-v] FILE|DIR...\n", argv[0]);
		return 2;
	}
	signal(SIGABRT, on_abort);
	printf("1..%d\n", argc - first);
	for (int i = first; i < argc; i++) {
		unsigned long count = 0;
		struct stat st;
		int status;

		if ((status = stat(argv[i], &st)) == 0) {
			if (S_ISDIR(st.st_mode))
				status = replay_dir(argv[i], verbose, &count);
			else if ((status = replay_file(argv[i], verbose)) == 0)
				count = 1;
		}
		if (status == 0 && count == 0) {
			printf("not ok %d - no inputs in %s\n", i - first + 1, argv[i]);
			failed = 1;
		} else if (status == 0) {
			printf("ok %d - replayed %lu input%s from %s\n", i - first + 1,
			    count, count == 1 ? "" : "s", argv[i]);
		} else {
			printf("not ok %d - %s: %s\n", i - first + 1, argv[i],
			    strerror(errno));
			failed = 1;
		}
	}
	return failed;
}

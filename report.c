/*
 * report.c: what the user sees on stderr: the one-line errors, the
 * progress of -p, whose line an error ends first, and the statistics of
 * -v.  See report.h.
 */
#define _GNU_SOURCE

#include <err.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "report.h"

#define PROGRESS_CONSOLE_INTERVAL	0.2	/* seconds */
#define PROGRESS_LINE_INTERVAL		1.0

/*
 * -p: progress on stderr.  On a console one line is rewritten in place;
 * elsewhere, as in a log, each update is a line of its own.
 */
static struct {
	int on;
	int console;
	int showing;		/* a console line waits for its newline */
	int width;		/* of the line showing, to blank what it leaves */
	uint64_t total;		/* bytes of input a pass */
	int passes, pass;	/* of the run; the current one, from 1 */
	uint64_t moved;		/* the last count of bytes moved */
	uint64_t moved_before;	/* by the passes before this one */
	struct timespec start, last;
} progress;

static void
end_progress_line(void)
{
	if (progress.showing)
		fputc('\n', stderr);
	progress.showing = 0;
}

void
die(int status, const char *fmt, ...)
{
	int saved_errno = errno;
	va_list ap;

	end_progress_line();
	errno = saved_errno;
	va_start(ap, fmt);
	verr(status, fmt, ap);
}

void
diex(int status, const char *fmt, ...)
{
	va_list ap;

	end_progress_line();
	va_start(ap, fmt);
	verrx(status, fmt, ap);
}

static double
seconds_since(const struct timespec *then, const struct timespec *now)
{
	return (double)(now->tv_sec - then->tv_sec) +
	    (double)(now->tv_nsec - then->tv_nsec) / 1e9;
}

void
progress_start(uint64_t total, int passes, int console)
{
	progress.on = 1;
	progress.console = console;
	progress.total = total;
	progress.passes = passes;
	progress.pass = 1;
	clock_gettime(CLOCK_MONOTONIC, &progress.start);
	progress.last = progress.start;
}

void
progress_next_pass(void)
{
	progress.pass++;
	progress.moved_before = progress.moved;
	clock_gettime(CLOCK_MONOTONIC, &progress.start);
	progress.last = progress.start;
}

/* Seconds as m:ss. */
static int
print_time(char *p, size_t room, double seconds)
{
	unsigned long whole = (unsigned long)seconds;

	return snprintf(p, room, "%lu:%02lu", whole / 60, whole % 60);
}

/*
 * The share of the input done in this pass, the rate of bytes read (not
 * those skipped over by seeking), the time taken and, until the end, the
 * time left at the pace so far, all of this pass.  The final line alone
 * says 100%.
 */
void
count_progress(uint64_t done, uint64_t moved, int final)
{
	struct timespec now;
	double elapsed, percent, rate;
	char line[160];
	int width;

	if (!progress.on)
		return;
	progress.moved = moved;
	moved -= progress.moved_before;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (!final && (done >= progress.total || seconds_since(&progress.last, &now) <
	    (progress.console ? PROGRESS_CONSOLE_INTERVAL : PROGRESS_LINE_INTERVAL)))
		return;
	progress.last = now;
	elapsed = seconds_since(&progress.start, &now);
	/* Rounded down: 100% is for the end alone. */
	percent = progress.total > 0 && !final ?
	    (double)(uint64_t)(1000.0 * (double)done / (double)progress.total) / 10 : 100.0;
	rate = elapsed > 0 ? (double)moved / elapsed / 1048576.0 : 0.0;
	width = snprintf(line, sizeof(line), "sqcow2: ");
	if (progress.passes > 1)
		width += snprintf(line + width, sizeof(line) - (size_t)width,
		    "pass %d of %d: ", progress.pass, progress.passes);
	width += snprintf(line + width, sizeof(line) - (size_t)width,
	    "%5.1f%% of %.1f MiB, %.1f MiB/s, ", percent,
	    (double)progress.total / 1048576.0, rate);
	width += print_time(line + width, sizeof(line) - (size_t)width, elapsed);
	if (!final && done > 0) {
		width += snprintf(line + width, sizeof(line) - (size_t)width, ", ");
		width += print_time(line + width, sizeof(line) - (size_t)width,
		    elapsed * (double)(progress.total - done) / (double)done);
		width += snprintf(line + width, sizeof(line) - (size_t)width, " left");
	}
	if (progress.console) {
		fprintf(stderr, "\r%-*s", progress.width, line);
		progress.width = width;
		progress.showing = 1;
		if (final)
			end_progress_line();
	} else {
		fprintf(stderr, "%s\n", line);
	}
	fflush(stderr);
}

int
progress_on(void)
{
	return progress.on;
}

/* VmHWM: unlike ru_maxrss, not inherited across exec from a larger parent. */
static long
peak_memory_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[128];
	long kib = -1;

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmHWM: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

void
print_statistics(uint64_t read, uint64_t skipped, uint64_t written,
    const char *output_holds)
{
	fprintf(stderr, "sqcow2: read %" PRIu64 " bytes, skipped %" PRIu64
	    " by seeking, wrote %" PRIu64 " (%s), peak memory %ld KiB\n", read,
	    skipped, written, output_holds, peak_memory_kib());
}

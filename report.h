/*
 * report.h: one-line errors that end a progress line first, and the
 * progress of -p.
 */
#ifndef REPORT_H
#define REPORT_H

#include <stdint.h>

/* err(3) and errx(3), once a progress line showing has been ended. */
_Noreturn void die(int status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
_Noreturn void diex(int status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * -p: progress on stderr, of total bytes of input a pass, pass by pass
 * when there are two.  count_progress reports done bytes of the current
 * pass, and moved bytes read over all passes, if it is time to, or
 * always when final; progress_next_pass starts the second pass, its
 * clock and its rate anew.
 */
void progress_start(uint64_t total, int passes, int console);
void count_progress(uint64_t done, uint64_t moved, int final);
void progress_next_pass(void);
int progress_on(void);

/*
 * The peak resident memory of this program, in KiB: the VmHWM of
 * /proc/self/status, which unlike ru_maxrss is not inherited across exec
 * from a larger parent; -1 where it cannot be read.
 */
long peak_memory_kib(void);

/*
 * The comment line that begins the range file of --map, on stdout, for
 * the disk name of size bytes.  The range reader knows it by
 * RANGES_MAP_HEADER and refuses it over a backing file.
 */
void print_map_header(const char *name, uint64_t size);

#endif

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
 * -v, in either direction: the bytes read, skipped by seeking and
 * written, what the output holds (a phrase), and the peak resident memory
 * of this program (-1 KiB where /proc cannot tell it).
 */
void print_statistics(uint64_t read, uint64_t skipped, uint64_t written,
    const char *output_holds);

#endif

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
 * -p: progress on stderr, of total bytes of input over all passes.
 * count_progress reports done bytes of the current pass, of which moved
 * were read, if it is time to, or always when final; progress_pass_done
 * adds a finished pass's bytes.
 */
void progress_start(uint64_t total, int console);
void count_progress(uint64_t done, uint64_t moved, int final);
void progress_pass_done(uint64_t bytes);
int progress_on(void);

/*
 * A file name on stdout, in the comment line of a range file: bytes that
 * would end the line or hide in a terminal are written as \\ooo.
 */
void print_name(const char *name);

#endif

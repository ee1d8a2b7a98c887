/*
 * t/fuzz/fuzz.h: the one entry point each harness defines, called by
 * libFuzzer or, without it, by replay.c.
 */
#ifndef FUZZ_H
#define FUZZ_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Run one input; returns 0, and aborts when an invariant does not hold. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Say which invariant broke, then abort, for libFuzzer or replay to see. */
static inline void
fuzz_fail(const char *fmt, ...)
{
	va_list ap;

	fputs("fuzz: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

#define need(ok, ...)	do { if (!(ok)) fuzz_fail(__VA_ARGS__); } while (0)

#endif

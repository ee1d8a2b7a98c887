/*
 * t/fuzz/fuzz.h: the one entry point each harness defines, called by
 * libFuzzer or, without it, by replay.c.
 */
#ifndef FUZZ_H
#define FUZZ_H

#include <stddef.h>
#include <stdint.h>

/* Run one input; returns 0, and aborts when an invariant does not hold. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif

/*
 * t/tap.h: the TAP harness of the unit tests (t/unit*.c), one "ok N -
 * what" line a test.  A failed check prints, as TAP comments before its
 * test's line, the check, where it is, what the test was looking at (the
 * case) and both values.  Each test program includes it once.
 *
 *	TEST(some_test(), "what it shows");
 *	...
 *	return tap_done();
 */
#ifndef TAP_H
#define TAP_H

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SHOWN_PER_TEST	8	/* failed checks printed in full per test */

static int tests_run, tests_failed;
static int checks_failed;	/* in the current test */
static char case_text[1024];	/* what the current test is looking at */
static char note_text[256];	/* where, for the next failed check only */

/* Memory, or the run ends with "Bail out!": a test cannot go on without it. */
static inline void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL) {
		printf("Bail out! out of memory\n");
		exit(1);
	}
	return p;
}

static inline void *
xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (p == NULL) {
		printf("Bail out! out of memory\n");
		exit(1);
	}
	return p;
}

static inline void *
xrealloc(void *p, size_t size)
{
	if ((p = realloc(p, size ? size : 1)) == NULL) {
		printf("Bail out! out of memory\n");
		exit(1);
	}
	return p;
}

/*
 * The tests' random numbers, xorshift64: each program seeds rng_state
 * (defining it again with a value, or setting it), so that a run is the
 * same every time.
 */
static uint64_t rng_state;

static inline uint64_t
rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

#define TEST(call, what)	(test_begin(), (call), test_end(what))

#define check(expr)		check_at(__FILE__, __LINE__, #expr, (expr) != 0)
#define check_u64(got, want)	check_u64_at(__FILE__, __LINE__, #got, \
				    (uint64_t)(got), #want, (uint64_t)(want))
#define check_str(got, want)	check_str_at(__FILE__, __LINE__, #got, (got), \
				    #want, (want))

static inline void
test_begin(void)
{
	checks_failed = 0;
	case_text[0] = note_text[0] = '\0';
}

static inline void
test_end(const char *what)
{
	tests_run++;
	if (checks_failed > SHOWN_PER_TEST)
		printf("# (and %d more failed checks)\n",
		    checks_failed - SHOWN_PER_TEST);
	if (checks_failed > 0)
		tests_failed++;
	printf("%sok %d - %s\n", checks_failed > 0 ? "not " : "", tests_run, what);
	fflush(stdout);
}

/* The plan line, and the exit status: 1 if any test failed. */
static inline int
tap_done(void)
{
	printf("1..%d\n", tests_run);
	return tests_failed > 0;
}

static inline void
set_case(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(case_text, sizeof(case_text), fmt, ap);
	va_end(ap);
}

/* Append to the case text, as far as it has room. */
static inline void
add_case(const char *fmt, ...)
{
	size_t used = strlen(case_text);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(case_text + used, sizeof(case_text) - used, fmt, ap);
	va_end(ap);
}

/* Where the next check is, said only if it fails. */
static inline void
note(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(note_text, sizeof(note_text), fmt, ap);
	va_end(ap);
}

/* Count a failed check; returns whether to print its values. */
static inline int
check_failed(const char *file, int line, const char *got, const char *op,
    const char *want)
{
	if (++checks_failed > SHOWN_PER_TEST) {
		note_text[0] = '\0';
		return 0;
	}
	printf("# check \"%s%s%s\" failed at %s:%d\n", got, op, want, file, line);
	if (case_text[0] != '\0')
		printf("#   case: %s\n", case_text);
	if (note_text[0] != '\0')
		printf("#     at: %s\n", note_text);
	note_text[0] = '\0';
	return 1;
}

static inline int
check_at(const char *file, int line, const char *expr, int ok)
{
	if (!ok)
		check_failed(file, line, expr, "", "");
	return ok;
}

static inline int
check_u64_at(const char *file, int line, const char *got_expr, uint64_t got,
    const char *want_expr, uint64_t want)
{
	if (got == want)
		return 1;
	if (check_failed(file, line, got_expr, " == ", want_expr)) {
		printf("#    got: %" PRIu64 " (0x%" PRIx64 ")\n", got, got);
		printf("#   want: %" PRIu64 " (0x%" PRIx64 ")\n", want, want);
	}
	return 0;
}

static inline void
print_str(const char *label, const char *s)
{
	if (s == NULL)
		printf("#   %s: NULL\n", label);
	else
		printf("#   %s: \"%s\"\n", label, s);
}

static inline int
check_str_at(const char *file, int line, const char *got_expr, const char *got,
    const char *want_expr, const char *want)
{
	if (got == want || (got != NULL && want != NULL && strcmp(got, want) == 0))
		return 1;
	if (check_failed(file, line, got_expr, " == ", want_expr)) {
		print_str(" got", got);
		print_str("want", want);
	}
	return 0;
}

#endif

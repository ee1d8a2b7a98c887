/*
 * sizes.c: sizes as users write them; see sizes.h.
 */
#include <ctype.h>
#include <string.h>

#include "range_list.h"
#include "sizes.h"

/*
 * The bytes of digits after a decimal point, numerator / 10^places, in
 * units of 1 << shift: whole bytes, or -1.  Trailing zeros are dropped
 * first, so that 1.50G is 1.5G.
 */
static int
fraction_bytes(uint64_t numerator, unsigned places, unsigned shift, uint64_t *bytes)
{
	uint64_t fives = 1;

	for (; places > 0 && numerator % 10 == 0; places--)
		numerator /= 10;
	for (unsigned i = 0; i < places; i++)
		fives *= 5;
	/* numerator * 2^shift / (2^places * 5^places) */
	if (numerator % fives != 0)
		return -1;
	numerator /= fives;
	if (shift >= places) {
		*bytes = numerator << (shift - places);
		return 0;
	}
	if (numerator % (UINT64_C(1) << (places - shift)) != 0)
		return -1;
	*bytes = numerator >> (places - shift);
	return 0;
}

/*
 * A size in bytes, with an optional suffix k, M, G, T, P or E for powers
 * of 1024, as qemu-img reads them, also written KiB, MiB...; a decimal
 * fraction such as 1.5G must come to whole bytes.  KB, MB, GB... are
 * refused: truncate reads them as powers of 1000, and many people as
 * powers of 1024.  Returns NULL, or why s is no size.
 */
const char *
parse_size(const char *s, uint64_t *size)
{
	static const char units[] = "kmgtpe";
	const char *unit;
	uint64_t whole, numerator = 0, part = 0;
	unsigned places = 0, shift = 0;
	char *end;

	if (parse_number(s, &end, &whole) == -1)
		return "a number of bytes, or with k, M, G, T, P or E for powers of 1024";
	if (*end == '.' && s[1] != 'x' && s[1] != 'X') {
		for (end++; isdigit((unsigned char)*end) && places < 19; end++, places++)
			numerator = numerator * 10 + (uint64_t)(*end - '0');
		if (places == 0 || isdigit((unsigned char)*end))
			return "a number of bytes, or with k, M, G, T, P or E for powers of 1024";
	}
	if (*end != '\0' && (unit = strchr(units, tolower((unsigned char)*end))) != NULL) {
		shift = 10 * (unsigned)(unit - units + 1);
		end++;
		if (strcmp(end, "B") == 0 || strcmp(end, "b") == 0)
			return "KB, MB, GB... mean powers of 1000 to some and 1024 to "
			    "others: write k, M, G... or KiB, MiB, GiB... for 1024";
		if (strcmp(end, "iB") == 0 || strcmp(end, "ib") == 0)
			end += 2;
	} else if (strcmp(end, "B") == 0 || strcmp(end, "b") == 0) {
		end++;
	}
	if (*end != '\0')
		return "a number of bytes, or with k, M, G, T, P or E for powers of 1024";
	if (fraction_bytes(numerator, places, shift, &part) == -1)
		return "not a whole number of bytes";
	if (whole > (UINT64_MAX >> shift) || (whole << shift) > UINT64_MAX - part)
		return "too large";
	*size = (whole << shift) + part;
	return NULL;
}

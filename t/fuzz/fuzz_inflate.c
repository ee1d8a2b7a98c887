/*
 * t/fuzz/fuzz_inflate.c: inflate_cluster (inflate.h) against zlib called
 * as QEMU calls it (t/zlib_qemu.h), on any bytes.
 *
 * The first byte gives the cluster size: below 208, 512 << (byte % 13),
 * 512 B to 2 MiB; else byte - 207, 1 to 48 bytes, so that streams that
 * fill the cluster early and go on are common.  The rest is the stream,
 * handed over in place so that a read past its end is seen.  Both must
 * refuse it, or both accept it with the same bytes; a refusal must say
 * why, at a byte inside the input or at its end.  The tables start as
 * garbage, since inflate.h asks for no set-up.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "inflate.h"
#include "fuzz.h"
#include "../zlib_qemu.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct inflate_error err = { NULL, 0 };
	struct inflater *z;
	unsigned char *ours, *theirs;
	size_t out_len, in_len;
	int ours_ok, theirs_ok;

	if (size == 0)
		return 0;
	out_len = data[0] < 208 ? (size_t)512 << (data[0] % 13) : (size_t)data[0] - 207;
	in_len = size - 1;
	z = malloc(sizeof(*z));
	ours = malloc(out_len);
	theirs = malloc(out_len);
	need(z != NULL && ours != NULL && theirs != NULL, "out of memory");
	memset(z, 0xa5, sizeof(*z));
	ours_ok = inflate_cluster(z, ours, out_len, data + 1, in_len, &err) == 0;
	theirs_ok = qemu_inflate(theirs, out_len, data + 1, in_len) == 0;
	need(ours_ok == theirs_ok,
	    "cluster of %zu from %zu bytes: ours %s (%s at %zu), zlib %s", out_len, in_len,
	    ours_ok ? "accepts" : "refuses", ours_ok ? "-" : err.why, err.at,
	    theirs_ok ? "accepts" : "refuses");
	if (ours_ok) {
		for (size_t i = 0; i < out_len; i++)
			need(ours[i] == theirs[i],
			    "cluster of %zu: byte %zu is %u, zlib's %u", out_len, i,
			    ours[i], theirs[i]);
	} else {
		need(err.why != NULL && err.why[0] != '\0', "a refusal with no reason");
		need(err.at <= in_len, "a refusal at %zu of %zu bytes", err.at, in_len);
	}
	free(theirs);
	free(ours);
	free(z);
	return 0;
}

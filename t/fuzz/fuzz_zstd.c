/*
 * t/fuzz/fuzz_zstd.c: zstd_decode_cluster (zstd_decode.h) against
 * libzstd called as QEMU calls it (t/zstd_qemu.h), on any bytes.
 *
 * The first byte gives the cluster size: below 208, 512 << (byte % 13),
 * 512 B to 2 MiB; else byte - 207, 1 to 48 bytes, so that frames that
 * fill the cluster early and go on are common.  The rest is the input,
 * handed over in place so that a read past its end is seen.  Whenever
 * libzstd accepts it, ours must too, with the same bytes, unless a
 * Huffman stream does not end where its literals do, which libzstd's
 * fast path does not check (ZSTD_HUFFMAN_END), or the frame is one of
 * zstd before 0.8 (ZSTD_LEGACY); and ours may accept only what libzstd
 * accepts.  A refusal must say why, at a byte
 * inside the input or at its end.  The decoder's struct starts as
 * garbage, since zstd_decode.h asks for no set-up.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "zstd_decode.h"
#include "fuzz.h"
#include "../zstd_qemu.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct zstd_error err = { NULL, 0 };
	struct zstd_decoder *z;
	unsigned char *ours, *theirs;
	size_t out_len, in_len;
	int ours_ok, theirs_ok, tolerated;

	if (size == 0)
		return 0;
	out_len = data[0] < 208 ? (size_t)512 << (data[0] % 13) : (size_t)data[0] - 207;
	in_len = size - 1;
	z = malloc(sizeof(*z));
	ours = malloc(out_len);
	theirs = malloc(out_len);
	need(z != NULL && ours != NULL && theirs != NULL, "out of memory");
	memset(z, 0xa5, sizeof(*z));
	ours_ok = zstd_decode_cluster(z, ours, out_len, data + 1, in_len, &err) == 0;
	theirs_ok = qemu_zstd_decompress(theirs, out_len, data + 1, in_len) == 0;
	tolerated = theirs_ok && !ours_ok && err.why != NULL &&
	    (strcmp(err.why, ZSTD_HUFFMAN_END) == 0 || strcmp(err.why, ZSTD_LEGACY) == 0);
	need(ours_ok == theirs_ok || tolerated,
	    "cluster of %zu from %zu bytes: ours %s (%s at %zu), libzstd %s", out_len,
	    in_len, ours_ok ? "accepts" : "refuses", ours_ok ? "-" : err.why, err.at,
	    theirs_ok ? "accepts" : "refuses");
	if (ours_ok) {
		for (size_t i = 0; i < out_len; i++)
			need(ours[i] == theirs[i],
			    "cluster of %zu: byte %zu is %u, libzstd's %u", out_len, i,
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

/*
 * t/fuzz/fuzz_deflate.c: deflate_cluster (deflate.h) on any bytes, its
 * streams decoded by zlib called as QEMU calls it (t/zlib_qemu.h) and by
 * inflate_cluster (inflate.h).
 *
 * The first byte says what to compress: its low 6 bits a cluster size,
 * below 56 modulo 8, 512 B to 64 KiB, else 128 KiB to 2 MiB, seldom so
 * that runs stay quick; its high 2 bits, the cluster made of
 * the rest of the input, cut to that size and padded with zeros (0), or
 * repeated to fill it (1), into cluster_size - 1 bytes as QEMU asks; or
 * the rest alone, into one byte less than it (2) or into all the room
 * it may need (3).  The stream must decode back to it, through a 4 KiB
 * window too when the cluster is no more than 64 KiB; and 0 may come
 * back only when the stream with all the room is longer than out_cap,
 * and the stream into out_cap must be that one when it fits.
 * The output buffer is exactly out_cap bytes, so that a write past it is
 * seen; the struct starts as garbage, since deflate.h asks for no set-up.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "deflate.h"
#include "inflate.h"
#include "fuzz.h"
#include "../zlib_qemu.h"

/* Decode stream[0..len) with both decoders, and with zlib's window if windowed: data[0..n)? */
static void
check_decodes(const unsigned char *stream, size_t len, const unsigned char *data, size_t n,
    int windowed)
{
	struct inflater *tables = malloc(sizeof(*tables));
	unsigned char *back = malloc(n ? n : 1);
	struct inflate_error err = { "-", 0 };
	z_stream strm;
	int ret = Z_OK;

	need(tables != NULL && back != NULL, "out of memory");
	need(qemu_inflate(back, n, stream, len) == 0 && memcmp(back, data, n) == 0,
	    "%zu bytes from %zu: zlib does not give them back", n, len);
	need(inflate_cluster(tables, back, n, stream, len, &err) == 0 &&
	    memcmp(back, data, n) == 0,
	    "%zu bytes from %zu: inflate_cluster does not give them back (%s at %zu)", n,
	    len, err.why, err.at);
	if (windowed) {
		memset(&strm, 0, sizeof(strm));
		strm.next_in = (Bytef *)(uintptr_t)stream;
		strm.avail_in = (uInt)len;
		strm.next_out = back;
		need(inflateInit2(&strm, -12) == Z_OK, "inflateInit2");
		while (ret == Z_OK && strm.total_out < n) {
			strm.avail_out = 1;
			ret = inflate(&strm, Z_NO_FLUSH);
		}
		need(strm.total_out == n && memcmp(back, data, n) == 0,
		    "%zu bytes from %zu: a 4 KiB window refuses them (%s)", n, len,
		    strm.msg ? strm.msg : "-");
		inflateEnd(&strm);
	}
	free(back);
	free(tables);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct deflater *z;
	unsigned char *in, *out, *whole;
	size_t cs, in_len, out_cap, room, got, full;
	unsigned mode, shift;

	if (size == 0)
		return 0;
	mode = data[0] >> 6;
	shift = data[0] & 63;
	cs = (size_t)512 << (shift < 56 ? shift % 8 : 8 + (shift - 56) % 5);
	in_len = mode < 2 ? cs : size - 1;
	in = malloc(in_len ? in_len : 1);
	z = malloc(sizeof(*z));
	need(in != NULL && z != NULL, "out of memory");
	if (mode >= 2 || size - 1 >= cs) {
		memcpy(in, data + 1, in_len);
	} else if (mode == 0 || size == 1) {
		memcpy(in, data + 1, size - 1);
		memset(in + size - 1, 0, cs - (size - 1));
	} else {
		for (size_t i = 0; i < cs; i += size - 1)
			memcpy(in + i, data + 1, cs - i < size - 1 ? cs - i : size - 1);
	}
	room = in_len + in_len / 1024 + 64;
	out_cap = mode < 2 ? cs - 1 : mode == 2 ? (in_len ? in_len - 1 : 0) : room;
	out = malloc(out_cap ? out_cap : 1);
	whole = malloc(room);
	need(out != NULL && whole != NULL, "out of memory");
	memset(z, 0xa5, sizeof(*z));
	got = deflate_cluster(z, out, out_cap, in, in_len);
	full = deflate_cluster(z, whole, room, in, in_len);
	need(full != 0, "%zu bytes do not fit in %zu", in_len, room);
	need(got == (full <= out_cap ? full : 0),
	    "%zu bytes into %zu: %zu, but %zu with room", in_len, out_cap, got, full);
	need(got == 0 || memcmp(out, whole, got) == 0,
	    "%zu bytes: the stream into %zu is not the one with room", in_len, out_cap);
	check_decodes(whole, full, in, in_len, in_len <= 65536);
	free(whole);
	free(out);
	free(z);
	free(in);
	return 0;
}

/*
 * t/zlib_qemu.h: zlib called as QEMU calls it for a compressed cluster
 * (block/qcow2-threads.c), the oracle of the tests of inflate.h.  Tests
 * link -lz; sqcow2 never does.
 */
#ifndef ZLIB_QEMU_H
#define ZLIB_QEMU_H

#include <limits.h>
#include <string.h>
#include <zlib.h>

/*
 * Decode the raw deflate stream in[0..in_len) into out[0..out_len) as
 * QEMU reads a compressed cluster: 0 if zlib filled out with no error
 * before it stopped, else -1.  Both lengths must fit an unsigned int.
 */
static inline int
qemu_inflate(unsigned char *out, size_t out_len, const unsigned char *in, size_t in_len)
{
	z_stream strm;
	int ret;

	memset(&strm, 0, sizeof(strm));
	strm.avail_in = (uInt)in_len;
	strm.next_in = (Bytef *)(uintptr_t)in;
	strm.avail_out = (uInt)out_len;
	strm.next_out = out;
	if (inflateInit2(&strm, -12) != Z_OK)
		return -1;
	ret = inflate(&strm, Z_FINISH);
	ret = (ret == Z_STREAM_END || ret == Z_BUF_ERROR) && strm.avail_out == 0 ? 0 : -1;
	inflateEnd(&strm);
	return ret;
}

/*
 * Compress in[0..in_len) as QEMU compresses a cluster, into at most
 * out_room bytes at out (QEMU gives cluster_size - 1): the stream's
 * length, or 0 if it does not fit, when QEMU stores the cluster as is.
 */
static inline size_t
qemu_deflate(unsigned char *out, size_t out_room, const unsigned char *in, size_t in_len)
{
	z_stream strm;
	size_t len = 0;

	memset(&strm, 0, sizeof(strm));
	if (deflateInit2(&strm, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -12, 9,
	    Z_DEFAULT_STRATEGY) != Z_OK)
		return 0;
	strm.avail_in = (uInt)in_len;
	strm.next_in = (Bytef *)(uintptr_t)in;
	strm.avail_out = (uInt)out_room;
	strm.next_out = out;
	if (deflate(&strm, Z_FINISH) == Z_STREAM_END)
		len = out_room - strm.avail_out;
	deflateEnd(&strm);
	return len;
}

#endif

/*
 * t/zstd_qemu.h: libzstd called as QEMU calls it for a compressed
 * cluster (block/qcow2-threads.c), the oracle of the tests of
 * zstd_decode.h.  Tests link -lzstd; sqcow2 never does.
 */
#ifndef ZSTD_QEMU_H
#define ZSTD_QEMU_H

#include <zstd.h>

/*
 * Decode the frames in[0..in_len) into out[0..out_len) as QEMU reads a
 * compressed cluster: the streaming decoder with its defaults, called
 * until out is full, each call bound to make progress, and the last one
 * to end a frame.  0 if so, else -1.
 */
static inline int
qemu_zstd_decompress(unsigned char *out, size_t out_len, const unsigned char *in,
    size_t in_len)
{
	ZSTD_outBuffer output = { out, out_len, 0 };
	ZSTD_inBuffer input = { in, in_len, 0 };
	ZSTD_DStream *dctx = ZSTD_createDStream();
	size_t zstd_ret = 0;
	int ret = 0;

	if (dctx == NULL)
		return -1;
	while (output.pos < output.size) {
		size_t last_in_pos = input.pos, last_out_pos = output.pos;

		zstd_ret = ZSTD_decompressStream(dctx, &output, &input);
		if (ZSTD_isError(zstd_ret)) {
			ret = -1;
			break;
		}
		if (last_in_pos >= input.pos && last_out_pos >= output.pos) {
			ret = -1;
			break;
		}
	}
	if (zstd_ret > 0)
		ret = -1;
	ZSTD_freeDStream(dctx);
	return ret;
}

/*
 * Compress in[0..in_len) as QEMU compresses a cluster (one call of
 * ZSTD_compressStream2 with ZSTD_e_end, so the frame gives its content
 * size), at level (QEMU's is the default, 3), into at most out_room
 * bytes at out (QEMU gives cluster_size - 1): the frame's length, or 0 if
 * it does not fit, when QEMU stores the cluster as is.
 */
static inline size_t
qemu_zstd_compress(unsigned char *out, size_t out_room, const unsigned char *in,
    size_t in_len, int level)
{
	ZSTD_outBuffer output = { out, out_room, 0 };
	ZSTD_inBuffer input = { in, in_len, 0 };
	ZSTD_CCtx *cctx = ZSTD_createCCtx();
	size_t ret;

	if (cctx == NULL)
		return 0;
	ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level);
	ret = ZSTD_compressStream2(cctx, &output, &input, ZSTD_e_end);
	ret = ZSTD_isError(ret) || ret > output.size - output.pos ? 0 : output.pos;
	ZSTD_freeCCtx(cctx);
	return ret;
}

#endif

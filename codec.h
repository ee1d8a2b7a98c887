/*
 * codec.h: a compressed cluster decoded by its image's compression type
 * (qcow2.h: COMPRESSION_DEFLATE or COMPRESSION_ZSTD), with no I/O.  Each
 * thread that decodes holds its own state, made by codec_new for the
 * type: 17.5 KiB for deflate, 148 KiB for zstd.
 */
#ifndef CODEC_H
#define CODEC_H

#include <stddef.h>

struct codec_error {
	const char *why;	/* a static phrase */
	size_t at;		/* the byte of the stream where the fault begins */
};

/* The state of one decoder of the type, or NULL for want of memory. */
void *codec_new(unsigned compression_type);
void codec_free(void *state);

/*
 * Decode the stored bytes in[0..in_len) of one cluster into exactly
 * out_len bytes at out; 0, or -1 with err set.  See inflate.h and
 * zstd_decode.h for what each type accepts.
 */
int codec_decode(unsigned compression_type, void *state, unsigned char *out,
    size_t out_len, const unsigned char *in, size_t in_len, struct codec_error *err);

#endif

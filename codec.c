/*
 * codec.c: the decoder of each compression type behind one call; see
 * codec.h.
 */
#include <stdlib.h>

#include "codec.h"
#include "inflate.h"
#include "qcow2.h"
#include "zstd_decode.h"

void *
codec_new(unsigned compression_type)
{
	if (compression_type == COMPRESSION_ZSTD)
		return malloc(sizeof(struct zstd_decoder));
	return malloc(sizeof(struct inflater));
}

void
codec_free(void *state)
{
	free(state);
}

int
codec_decode(unsigned compression_type, void *state, unsigned char *out,
    size_t out_len, const unsigned char *in, size_t in_len, struct codec_error *err)
{
	if (compression_type == COMPRESSION_ZSTD) {
		struct zstd_error zerr;

		if (zstd_decode_cluster(state, out, out_len, in, in_len, &zerr) == 0)
			return 0;
		err->why = zerr.why;
		err->at = zerr.at;
		return -1;
	} else {
		struct inflate_error ierr;

		if (inflate_cluster(state, out, out_len, in, in_len, &ierr) == 0)
			return 0;
		err->why = ierr.why;
		err->at = ierr.at;
		return -1;
	}
}

/*
 * decoder_tables.h: the L1 and refcount tables of a qcow2 image, read into
 * a decoder (decoder.h) a piece at a time: the L2 tables and the refcount
 * blocks they name, every entry checked as soon as what it must not touch
 * is known.  Also what the rest of the decoder builds on: how it fails,
 * which clusters are metadata, and how its arrays grow under its memory
 * cap.  Used by decoder_runs.c and decoder.c, not by the decoder's callers.
 *
 * These functions fill the table fields of struct decoder; they read its
 * header, its mode, from a pipe its position, and the host of the step
 * last asked for, at which a memory error points.
 */
#ifndef DECODER_TABLES_H
#define DECODER_TABLES_H

#include <stddef.h>
#include <stdint.h>

#include "decoder.h"

/* The end of every message that refuses an image only for its order. */
#define IMAGE_ORDER_ADVICE ": save the image to a file first (from a pipe, " \
	"sqcow2 reads only images in stream order)"

/*
 * Refuse the image d decodes: d->error gets fault, offset and the message
 * image_fail makes; decoder_next then returns STEP_ERROR.  Evaluates to -1.
 */
#define decoder_fail(d, fault, offset, ...) \
	((d)->failed = 1, image_fail(&(d)->error, (fault), (offset), __VA_ARGS__))

/*
 * Room for need elements of size bytes in array, which has room for *cap:
 * the array, perhaps moved, *cap raised, d->memory counting it, the total
 * kept within d->memory_max.  Returns NULL with d failed ("what" names the
 * elements in the message), the array still held and still counted.
 */
void *decoder_grow(struct decoder *d, void *array, size_t *cap, size_t size,
    size_t need, const char *what);

/*
 * Whether the cluster at host (aligned, past cluster 0) is metadata known
 * so far: the L1 or refcount table, an L2 table once the L1 table is all
 * read, a refcount block once the refcount table is.  If so, desc says
 * which, for a message.
 */
int tables_metadata_at(const struct decoder *d, uint64_t host, char *desc,
    size_t size);

/*
 * The first cluster of metadata known so far in bytes [start, end) of the
 * image, as tables_metadata_at knows it, with desc set; or UINT64_MAX.
 */
uint64_t tables_metadata_in(const struct decoder *d, uint64_t start,
    uint64_t end, char *desc, size_t size);

/*
 * The next len bytes of the L1 table's entries, a multiple of 8: each L2
 * table in use checked (reserved bits, alignment, place) and kept in L1
 * order.  Once all d->l1_bytes are in, they are sorted by host, and two
 * entries naming one L2 table are refused.  Returns 0, or -1 with d failed.
 */
int tables_add_l1(struct decoder *d, const unsigned char *buf, size_t len);

/*
 * The next len bytes of the refcount table: each refcount block checked
 * and kept.  Once all of the table is in, they are sorted, and one named
 * twice is refused.  Returns 0, or -1 with d failed.
 */
int tables_add_refcount_table(struct decoder *d, const unsigned char *buf,
    size_t len);

/* Fill *step with a step that reads no window slot, and return its kind. */
static inline enum step_kind
step_give(struct step *step, enum step_kind kind, uint64_t host, uint64_t guest,
    uint64_t length)
{
	*step = (struct step){ .kind = kind, .source = FROM_INPUT, .host = host,
	    .guest = guest, .length = length, .slot = NO_SLOT };
	return kind;
}

/* The index in d->l2_places of the L2 table at host, or d->ntables. */
size_t l2_place_of(const struct decoder *d, uint64_t host);

#endif

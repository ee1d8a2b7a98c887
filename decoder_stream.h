/*
 * decoder_stream.h: a qcow2 image decoded from a pipe, a cluster at a
 * time as it passes (see decoder.h for the steps and the window).  Called
 * by decoder.c alone; built on decoder_tables.h and decoder_runs.h.
 *
 * Each cluster of the input is, in turn: a table to read; data an L2
 * table has mapped, output at once if it may go out now, else held in
 * the window with every compressed cluster; a cluster nothing has mapped,
 * held while a table that may map it is still to come; or bytes nobody
 * needs, skipped.  A cluster held is given back once every item mapped to
 * it is output and no table is still to come, and given up, oldest
 * first, when the window needs room and nothing waits for it.
 */
#ifndef DECODER_STREAM_H
#define DECODER_STREAM_H

#include "decoder.h"

/*
 * The next step from a pipe, as decoder_next promises it: output before
 * input, input only when the output waits for it.
 */
enum step_kind stream_next(struct decoder *d, struct step *step);

/*
 * Place the items of the L2 table tables[table], just read: those whose
 * bytes have passed are pinned in the window (refused if it gave them
 * up), the others wait for theirs.  Returns 0, or -1 with d failed.
 */
int stream_place(struct decoder *d, size_t table);

/* What the window and its queues hold, freed. */
void stream_free(struct decoder *d);

#endif

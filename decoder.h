/*
 * decoder.h: a qcow2 image read back into the raw disk it holds, decided
 * step by step with no I/O.  Nothing here reads, writes or exits; it
 * allocates with malloc under a cap and formats its messages with
 * snprintf into the caller's structs.  Five files hold it, each built on
 * the ones before: decoder_header.c parses and checks cluster 0 (its
 * interface, decoder_header.h, comes with this one); decoder_tables.c reads
 * the L1 and refcount tables and keeps the memory cap (decoder_tables.h);
 * decoder_runs.c turns the L2 tables into runs of data and compressed
 * clusters (decoder_runs.h); decoder_stream.c decides what to do with
 * each cluster of a pipe (decoder_stream.h); decoder.c hands out the
 * steps below.  Callers need only this header.
 *
 * The caller holds the image's bytes, in a file it can pread or in a pipe
 * it can only read forward, and drives a decoder:
 *
 *	read the first IMAGE_PROBE_BYTES; n = image_header_size(...)
 *	read up to n bytes from offset 0; image_header_parse(&hdr, ...)
 *	decoder_init(&d, &hdr, mode, file_size); set d.output, d.window_max
 *	while ((kind = decoder_next(&d, &step)) != STEP_DONE) {
 *		TABLE: length bytes at host, from step.source; decoder_table(...)
 *		SKIP:  read and drop length bytes at host (forward only)
 *		HOLD:  read length bytes at host into window slot step.slot
 *		DATA:  length bytes at host, from step.source, are the disk at guest
 *		COMPRESSED: the stored bytes at host, of which the first
 *		       available exist and the rest read as zeros, inflate to
 *		       the length bytes of the disk at guest
 *		ZEROS: length bytes at guest read as zeros
 *		ERROR: d.error says what and where; stop
 *	}
 *	decoder_free(&d)
 *
 * Bytes come FROM_INPUT (from a pipe: the next length bytes, which start
 * at host; from a file: by offset), FROM_WINDOW (held by earlier HOLD
 * steps: decoder_slot gives the slot of each cluster, valid until the
 * next call), or FROM_NOWHERE (OUTPUT_MAP: only where the data lies
 * matters).  In DECODE_FORWARD mode the input steps follow each other
 * with no gap from the end of cluster 0, which the caller has read for
 * the header, so the input is read once, forward.
 *
 * Output steps (DATA, COMPRESSED, ZEROS) tile [0, virtual_size) exactly.
 * With OUTPUT_IN_ORDER and OUTPUT_MAP they come in guest order; with
 * OUTPUT_IN_PLACE, for an output that can seek, data comes as the input
 * brings it and zeros in guest order, so that the output is written
 * where each cluster belongs.
 *
 * From a file, any layout decodes: every table is read and checked
 * first, then the disk in guest order.  From a pipe, each cluster is
 * used as it passes: a table is read, data that a table has mapped is
 * output, or, if it is not its turn yet (in order) or shares its cluster
 * with compressed data, held in the window; a cluster no table has
 * mapped yet is held while a table that could map it is still to come.
 * The window is window_max bytes of whole clusters, the oldest cluster
 * that nothing waits for given up first; data that needs more, or a
 * cluster given up, is refused with IMAGE_WINDOW, naming its offset.
 * Images whose tables come before the data they map, in guest order (of
 * sqcow2, qemu-img convert), need none of it but for compressed
 * clusters, of which qemu-img puts a few just before their table.
 *
 * Memory does not grow with the virtual size: 56 bytes per L1 entry in
 * use, 8 per refcount block, from a file 32 per run of data (clusters
 * contiguous in both guest and host order, or the allocated subclusters
 * of a cluster, form one run) or compressed cluster, from a pipe 32 per
 * run or compressed cluster mapped and not yet passed in guest order,
 * and about 56 per cluster the window holds.  Arrays grow by doubling; their total is capped at
 * memory_max, and an image that needs more is refused.  The caller
 * needs one buffer of cluster_size bytes for TABLE steps, the window's
 * slots, and for COMPRESSED steps two clusters of input and one of
 * output.
 */
#ifndef DECODER_H
#define DECODER_H

#include <stddef.h>
#include <stdint.h>

#include "decoder_header.h"

#define IMAGE_MEMORY_MAX	((size_t)256 << 20)	/* 256 MiB of tables and runs */
#define DECODER_WINDOW_DEFAULT	((uint64_t)32 << 20)	/* see the README */

enum decoder_mode {
	DECODE_FORWARD,		/* a pipe: every input step starts where the last ended */
	DECODE_SEEKABLE,	/* a file of known size: any layout, tables first */
};

/* Where the disk goes, which decides the order of the output steps. */
enum decoder_output {
	OUTPUT_IN_ORDER,	/* a pipe: the disk from its start to its end */
	OUTPUT_IN_PLACE,	/* an output that can seek: data where it lies */
	OUTPUT_MAP,		/* only where the data is: no data bytes needed */
};

enum step_kind {
	STEP_TABLE,	/* hand length bytes at host to decoder_table */
	STEP_SKIP,	/* forward only: read and drop length bytes at host */
	STEP_HOLD,	/* forward only: keep length bytes at host in slot */
	STEP_DATA,	/* length bytes at host are the disk at guest */
	STEP_COMPRESSED,	/* stored bytes at host inflate to length at guest */
	STEP_ZEROS,	/* the disk reads as length zero bytes at guest */
	STEP_DONE,
	STEP_ERROR,	/* the decoder's error says what and where */
};

enum step_source {
	FROM_INPUT,	/* a pipe's next bytes, or a file's at host */
	FROM_WINDOW,	/* clusters held in the window: see decoder_slot */
	FROM_NOWHERE,	/* OUTPUT_MAP: the bytes are not needed */
};

struct step {
	enum step_kind kind;
	enum step_source source;	/* TABLE, DATA, COMPRESSED */
	uint64_t host;		/* TABLE, SKIP, HOLD, DATA, COMPRESSED: in the file */
	uint64_t guest;		/* DATA, COMPRESSED, ZEROS: in the disk */
	uint64_t length;	/* bytes; TABLE, HOLD: at most one cluster */
	uint64_t stored;	/* COMPRESSED: bytes at host, up to two clusters */
	uint64_t available;	/* COMPRESSED: of those, before the image ends */
	uint32_t slot;		/* HOLD: the window slot to keep the cluster in */
};

/* length bytes of the file at host hold the disk at guest; or, if
 * stored is not 0, stored bytes at host hold it compressed. */
struct data_run {
	uint64_t guest, host, length, stored;
};

/* From a pipe: a run or compressed cluster an L2 table maps, and how far
 * it has got. */
struct item {
	uint64_t guest, host, length;
	uint32_t stored;	/* compressed bytes at host; 0 for a run */
	uint8_t state;		/* ITEM_AHEAD, ITEM_HELD or ITEM_DONE */
};

enum {
	ITEM_AHEAD,	/* some of its bytes still to come */
	ITEM_HELD,	/* all in the window, or past the end: it may go out */
	ITEM_DONE,	/* output */
};

/* An L2 table, the entry of the L1 table that points at it, and from a
 * pipe, what it maps until the disk is output past it. */
struct l2_ref {
	uint64_t host;
	uint64_t index;
	struct item *items;	/* in guest order */
	uint32_t nitems, items_cap, next;	/* next: the first not passed */
	int read;
};

/* Where an L2 table is, and which it is of tables. */
struct l2_place {
	uint64_t host, table;
};

/* Bytes [start, end) of the image file. */
struct extent {
	uint64_t start, end;
};

/* A cluster of the image held in the window, and the items that need it. */
struct held {
	uint64_t host;
	uint32_t slot;		/* NO_SLOT once given up */
	uint32_t pins;		/* items mapped to it and not yet output */
	uint64_t guest;		/* of the first item mapped to it */
	uint64_t delta;		/* its guest - host, if a run */
	uint8_t claim;		/* CLAIM_NONE, CLAIM_RUN or CLAIM_COMPRESSED */
};

enum { CLAIM_NONE, CLAIM_RUN, CLAIM_COMPRESSED };

/* An item waiting for its next byte, need, to come down the pipe. */
struct waiting {
	uint64_t need;
	uint32_t table, item;
};

/* What a TABLE step reads, or what a SKIP step leads to. */
enum input_kind { INPUT_NONE, INPUT_L1, INPUT_REFCOUNT_TABLE, INPUT_L2, INPUT_DATA };

#define NO_SLOT	UINT32_MAX

/*
 * The state of one decoding.  The caller owns it; decoder_init fills it,
 * decoder_free releases what it holds.  Read error after STEP_ERROR;
 * output, window_max and memory_max may be set after decoder_init and
 * before the first decoder_next.
 */
struct decoder {
	/* What decoder_init was given */
	struct image_header hdr;	/* a copy */
	enum decoder_mode mode;
	enum decoder_output output;	/* OUTPUT_IN_ORDER unless set */
	uint64_t file_size;		/* seekable: bytes in the file */
	uint64_t window_max;		/* forward: DECODER_WINDOW_DEFAULT unless set */
	size_t memory_max;		/* IMAGE_MEMORY_MAX unless lowered */
	size_t memory;			/* bytes the arrays below hold */

	/* Where the steps have got to (decoder.c) */
	uint64_t position;		/* forward: the next byte of input */
	uint64_t input_end;		/* where the input ended; UINT64_MAX: not yet */
	uint64_t cursor;		/* the disk is output up to here */
	uint64_t owed_guest, owed_length;	/* zeros for a short last cluster */
	struct step asked;		/* the last input step handed out */
	enum input_kind asked_for;	/* what it reads or leads to */
	size_t asked_table;		/* INPUT_L2: which of tables */
	int awaiting_table;		/* a TABLE step's bytes are due */

	/* What the tables have said so far (decoder_tables.c, decoder_runs.c) */
	uint64_t l1_bytes, l1_read;	/* of the entries that map the disk */
	uint64_t refcount_table_bytes, refcount_table_read;
	struct extent l1_at, refcount_table_at;	/* whole clusters */

	struct l2_ref *tables;		/* L1 entries in use, in L1 order */
	size_t ntables, tables_cap, tables_read;
	struct l2_place *l2_places;	/* the same by host, once L1 is read */
	size_t next_l2;			/* forward: the first of those not read */
	uint64_t *refblocks;		/* refcount blocks, sorted once all are read */
	size_t nrefblocks, refblocks_cap;
	struct data_run *runs;		/* seekable: in guest order; [next_run, nruns) to output */
	size_t nruns, runs_cap, next_run;
	int runs_checked;		/* seekable: no two runs share a byte */

	/* From a pipe: the window and what waits (decoder_stream.c) */
	struct held *held;		/* by host; [0, nheld), some given up */
	size_t nheld, held_cap, held_live, evict_from;
	uint32_t *free_slots;		/* slots given back, to reuse */
	size_t nfree, free_cap;
	uint32_t slots_made, slots_max;	/* window_max in clusters */
	uint64_t given_up_until;	/* the end of the last cluster given up */
	struct waiting *waiting;	/* a heap by need */
	size_t nwaiting, waiting_cap;
	struct waiting *ready;		/* in place: held whole, to output */
	size_t nready, ready_cap, next_ready;
	struct waiting *passing;	/* the items a cluster brings, as it passes */
	size_t npassing, passing_cap;
	size_t cursor_table;		/* the first table the disk is not past */
	struct waiting emitting;	/* an item being output from the window */
	uint64_t emitted;		/* of it, bytes output so far */
	int emitting_now, swept, input_over;
	int unpin_due;			/* the clusters the last step read from */
	uint64_t unpin_from, unpin_to;

	/* Why the image is refused: set by decoder_fail (decoder_tables.h) */
	int failed;
	struct image_error error;
};

/*
 * Start decoding the image whose header hdr holds (copied), read as mode
 * says; file_size is the size of the file in seekable mode and is ignored
 * in forward mode, where the caller has read cluster 0 and no more.
 */
void decoder_init(struct decoder *d, const struct image_header *hdr,
    enum decoder_mode mode, uint64_t file_size);

/*
 * The next thing to do, in *step; returns step->kind.  After STEP_ERROR
 * and STEP_DONE it keeps returning the same.  A TABLE step must be
 * answered with decoder_table before the next call.
 */
enum step_kind decoder_next(struct decoder *d, struct step *step);

/*
 * The bytes a TABLE step asked for: exactly its length.  Returns 0, or -1
 * if the table is bad (decoder_next then returns STEP_ERROR).
 */
int decoder_table(struct decoder *d, const unsigned char *buf, size_t len);

/*
 * The input ended at offset, inside the last input step, before its end.
 * As QEMU reads past the end of a file as zeros, so do the rest of a
 * cluster being held (the caller fills it), compressed data that runs
 * past the end (a COMPRESSED step's available says where), and the rest
 * of a data cluster that begins before it (decoder_next gives ZEROS);
 * any other byte still needed makes a truncated image.  Returns 0, or -1
 * with the error that decoder_next will return.
 */
int decoder_input_ended(struct decoder *d, uint64_t offset);

/*
 * The window slot that holds the cluster of the image at host, for a
 * FROM_WINDOW step, or NO_SLOT if none does.  Valid until the next call
 * to decoder_next.
 */
uint32_t decoder_slot(const struct decoder *d, uint64_t host);

/* Release what the decoder holds; it may then be initialised again. */
void decoder_free(struct decoder *d);

/*
 * For --map: the guest ranges that hold data, i.e. DATA and COMPRESSED
 * steps, joined
 * when they touch.  Feed every step to data_map_add in turn; it returns 1
 * when a range is complete (at a gap, or at STEP_DONE), with *done set to
 * it.  Start with *map zeroed.
 */
struct data_map {
	uint64_t offset, length;	/* the range being joined */
};
int data_map_add(struct data_map *map, const struct step *step,
    struct data_map *done);

#endif

/*
 * decoder.h: a qcow2 image read back into the raw disk it holds, decided
 * step by step with no I/O.  Nothing here reads, writes or exits; it
 * allocates with malloc under a cap and formats its messages with
 * snprintf into the caller's structs.  Four files hold it, each built on
 * the ones before: decoder_header.c parses and checks cluster 0 (its
 * interface, decoder_header.h, comes with this one); decoder_tables.c reads
 * the L1 and refcount tables and keeps the memory cap (decoder_tables.h);
 * decoder_runs.c turns the L2 tables into runs of data (decoder_runs.h);
 * decoder.c hands out the steps below.  Callers need only this header.
 *
 * The caller holds the image's bytes, in a file it can pread or in a pipe
 * it can only read forward, and drives a decoder:
 *
 *	read the first IMAGE_PROBE_BYTES; n = image_header_size(...)
 *	read up to n bytes from offset 0; image_header_parse(&hdr, ...)
 *	decoder_init(&d, &hdr, mode, file_size)
 *	while ((kind = decoder_next(&d, &step)) != STEP_DONE) {
 *		TABLE: read step.length bytes at step.host, decoder_table(...)
 *		SKIP:  read and drop step.length bytes (forward only)
 *		DATA:  copy step.length bytes from step.host to step.guest
 *		ZEROS: step.length bytes at step.guest read as zeros
 *		ERROR: d.error says what and where; stop
 *	}
 *	decoder_free(&d)
 *
 * DATA and ZEROS steps come in guest order and tile [0, virtual_size)
 * exactly.  In DECODE_FORWARD mode the input steps (TABLE, SKIP, DATA)
 * follow each other with no gap from the end of cluster 0, which the
 * caller has read for the header, so the input is read once, forward.
 *
 * From a pipe, an image decodes only in stream order: the L1 table before
 * the L2 tables, each L2 table before the data it maps, the L2 tables in
 * guest order and the data in guest order, the refcount table anywhere.
 * That is the order of sqcow2, of qemu-img convert -O qcow2 and of QEMU's
 * qcow2-to-stdout.py.  Any other order is refused where it shows, with a
 * message to save the image to a file first; from a file, any layout
 * decodes, and every table is read and checked before the first output.
 *
 * Memory does not grow with the virtual size: 24 bytes per L1 entry in
 * use, 8 per refcount block, 24 per run of data (clusters contiguous in
 * both guest and host order, or the allocated subclusters of a cluster,
 * form one run), and in forward mode 16 per gap skipped before the
 * refcount table is read; runs are freed as they are output in forward
 * mode.  Arrays grow by doubling; their total is capped at
 * IMAGE_MEMORY_MAX, and an image that needs more is refused.  The caller
 * needs one buffer of cluster_size bytes for TABLE steps.
 */
#ifndef DECODER_H
#define DECODER_H

#include <stddef.h>
#include <stdint.h>

#include "decoder_header.h"

#define IMAGE_MEMORY_MAX	((size_t)256 << 20)	/* 256 MiB of tables and runs */

enum decoder_mode {
	DECODE_FORWARD,		/* a pipe: every input step starts where the last ended */
	DECODE_SEEKABLE,	/* a file of known size: any layout, tables first */
};

enum step_kind {
	STEP_TABLE,	/* read length bytes at host, hand them to decoder_table */
	STEP_SKIP,	/* forward only: read and drop length bytes at host */
	STEP_DATA,	/* output length bytes from host as the disk at guest */
	STEP_ZEROS,	/* the disk reads as length zero bytes at guest */
	STEP_DONE,
	STEP_ERROR,	/* the decoder's error says what and where */
};

struct step {
	enum step_kind kind;
	uint64_t host;		/* TABLE, SKIP, DATA: offset in the image file */
	uint64_t guest;		/* DATA, ZEROS: offset in the disk */
	uint64_t length;	/* bytes; TABLE steps are at most one cluster */
};

/* length bytes of the file at host hold the disk at guest. */
struct data_run {
	uint64_t guest, host, length;
};

/* An L2 table, and the entry of the L1 table that points at it. */
struct l2_ref {
	uint64_t host;
	uint64_t index;
};

/* Bytes [start, end) of the image file. */
struct extent {
	uint64_t start, end;
};

/* What a TABLE step reads, or what a SKIP step leads to. */
enum input_kind { INPUT_NONE, INPUT_L1, INPUT_REFCOUNT_TABLE, INPUT_L2, INPUT_DATA };

/*
 * The state of one decoding.  The caller owns it; decoder_init fills it,
 * decoder_free releases what it holds.  Read error after STEP_ERROR;
 * memory_max may be lowered after decoder_init (tests do).
 */
struct decoder {
	/* What decoder_init was given */
	struct image_header hdr;	/* a copy */
	enum decoder_mode mode;
	uint64_t file_size;		/* seekable: bytes in the file */
	size_t memory_max;		/* IMAGE_MEMORY_MAX unless lowered */
	size_t memory;			/* bytes the arrays below hold */

	/* Where the steps have got to (decoder.c) */
	uint64_t position;		/* forward: the next byte of input */
	uint64_t input_end;		/* where the input ended; UINT64_MAX: not yet */
	uint64_t cursor;		/* the disk is output up to here */
	uint64_t owed_guest, owed_length;	/* zeros for a short last cluster */
	struct step asked;		/* the last input step handed out */
	enum input_kind asked_for;	/* what it reads or leads to */
	int awaiting_table;		/* a TABLE step's bytes are due */

	/* What the tables have said so far (decoder_tables.c, decoder_runs.c) */
	uint64_t l1_bytes, l1_read;	/* of the entries that map the disk */
	uint64_t refcount_table_bytes, refcount_table_read;
	struct extent l1_at, refcount_table_at;	/* whole clusters */

	struct l2_ref *tables;		/* L1 entries in use, in L1 order */
	size_t ntables, tables_cap, tables_read;
	uint64_t *l2_hosts;		/* the same, sorted by host, once L1 is read */
	uint64_t *refblocks;		/* refcount blocks, sorted once all are read */
	size_t nrefblocks, refblocks_cap;
	struct data_run *runs;		/* in guest order; [next_run, nruns) to output */
	size_t nruns, runs_cap, next_run;
	struct data_run last_added;	/* forward: the last run appended */
	struct extent *holes;		/* forward: gaps skipped before the refcount table */
	size_t nholes, holes_cap;
	int runs_checked;		/* seekable: no two runs share a byte */

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
 * Data past it in a cluster that begins before it reads as zeros, as QEMU
 * reads past the end of a file, and decoder_next gives ZEROS for it; any
 * other byte still needed makes a truncated image.  Returns 0, or -1 with
 * the error that decoder_next will return.
 */
int decoder_input_ended(struct decoder *d, uint64_t offset);

/* Release what the decoder holds; it may then be initialised again. */
void decoder_free(struct decoder *d);

/*
 * For --map: the guest ranges that hold data, i.e. DATA steps, joined
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

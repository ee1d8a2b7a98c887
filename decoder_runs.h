/*
 * decoder_runs.h: the L2 tables of a qcow2 image turned into the runs of
 * data that decoder.c's steps output: each entry checked, then its data
 * appended to d->runs in guest order, joined to the run before where it
 * continues it.  Called by decoder.c alone; built on decoder_tables.h, and
 * like it, reads the decoder's header, mode and, from a pipe, position.
 */
#ifndef DECODER_RUNS_H
#define DECODER_RUNS_H

#include "decoder.h"

/*
 * The whole of the next L2 table in L1 order, d->tables[d->tables_read],
 * a cluster: its entries inside the disk checked and their data kept as
 * runs; from a pipe, in stream order, every run behind none before it.
 * Returns 0, or -1 with d failed.
 */
int runs_add_l2(struct decoder *d, const unsigned char *buf);

/*
 * From a file, once every table is read: refuse two L2 entries that map
 * one host cluster (the runs are sorted by host to see it, then back by
 * guest), and set d->runs_checked.  Returns 0, or -1 with d failed.
 */
int runs_check_apart(struct decoder *d);

#endif

/*
 * decoder_runs.h: the L2 tables of a qcow2 image turned into the runs of
 * data and compressed clusters that decoder.c's steps output.  Called by
 * decoder.c alone; built on decoder_tables.h, and like it, reads the
 * decoder's header and mode.
 */
#ifndef DECODER_RUNS_H
#define DECODER_RUNS_H

#include "decoder.h"

/*
 * The whole of the L2 table tables[table], a cluster: its entries inside
 * the disk checked, their data kept, from a file as runs in d->runs, from
 * a pipe as the table's items, in guest order, each run joined to the
 * one before where it continues it.  Returns 0, or -1 with d failed.
 */
int runs_add_l2(struct decoder *d, size_t table, const unsigned char *buf);

/*
 * From a file, once every table is read: refuse two L2 entries that map
 * one host cluster (the runs are sorted by host to see it, then back by
 * guest), and set d->runs_checked.  Returns 0, or -1 with d failed.
 */
int runs_check_apart(struct decoder *d);

#endif

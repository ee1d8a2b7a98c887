/*
 * decoder_stream.c: a qcow2 image decoded from a pipe, a cluster at a
 * time (see decoder_stream.h, and decoder.h for the window).  Three
 * things wait here: items whose bytes are still to come, in a heap by the
 * next byte each needs; clusters held, by host; and in place, items held
 * whole, in the order they became so.  The disk's own order is kept by
 * the tables: each L2 table's items are in guest order, and the cursor
 * walks them.
 */
#include <inttypes.h>
#include <stdio.h>	/* snprintf, for messages */
#include <stdlib.h>

#include "decoder_stream.h"
#include "decoder_tables.h"
#include "util.h"

#define NOT_YET		UINT64_MAX
#define MiB		(UINT64_C(1) << 20)

/* Items */

static struct item *
item_of(struct decoder *d, struct waiting w)
{
	return &d->tables[w.table].items[w.item];
}

/* The end of an item's bytes in the file. */
static uint64_t
item_end(const struct item *it)
{
	return it->host + (it->stored != 0 ? it->stored : it->length);
}

static enum step_kind
give_error(struct step *step)
{
	return step_give(step, STEP_ERROR, 0, 0, 0);
}

/* The window's size, for a message: "32 MiB". */
static const char *
window_size(const struct decoder *d, char *buf, size_t size)
{
	if (d->window_max > 0 && d->window_max % MiB == 0)
		snprintf(buf, size, "%ju MiB", NUM(d->window_max / MiB));
	else
		snprintf(buf, size, "%ju bytes", NUM(d->window_max));
	return buf;
}

/* Whether a table still to come may map a cluster no table has mapped yet. */
static int
unknown_matters(const struct decoder *d)
{
	return d->l1_read < d->l1_bytes ||
	    (d->output != OUTPUT_MAP && d->tables_read < d->ntables);
}

/* The heap of items waiting for their bytes, soonest need first */

static int
sooner(const struct waiting *a, const struct waiting *b)
{
	if (a->need != b->need)
		return a->need < b->need;
	return a->table != b->table ? a->table < b->table : a->item < b->item;
}

static int
wait_for(struct decoder *d, uint64_t need, uint32_t table, uint32_t item)
{
	struct waiting *heap, w = { need, table, item };
	size_t i;

	if ((heap = decoder_grow(d, d->waiting, &d->waiting_cap, sizeof(*heap),
	    d->nwaiting + 1, "items waiting for their bytes")) == NULL)
		return -1;
	d->waiting = heap;
	for (i = d->nwaiting++; i > 0 && sooner(&w, &heap[(i - 1) / 2]); i = (i - 1) / 2)
		heap[i] = heap[(i - 1) / 2];
	heap[i] = w;
	return 0;
}

static struct waiting
next_waiting(struct decoder *d)
{
	struct waiting *heap = d->waiting, top = heap[0], last = heap[--d->nwaiting];
	size_t i = 0, child;

	while ((child = 2 * i + 1) < d->nwaiting) {
		if (child + 1 < d->nwaiting && sooner(&heap[child + 1], &heap[child]))
			child++;
		if (!sooner(&heap[child], &last))
			break;
		heap[i] = heap[child];
		i = child;
	}
	if (d->nwaiting > 0)
		heap[i] = last;
	return top;
}

static int
append(struct decoder *d, struct waiting **array, size_t *n, size_t *cap,
    struct waiting w, const char *what)
{
	struct waiting *grown;

	if ((grown = decoder_grow(d, *array, cap, sizeof(*grown), *n + 1, what)) == NULL)
		return -1;
	*array = grown;
	grown[(*n)++] = w;
	return 0;
}

/* An item all of whose bytes are held: in place, it may go out at once. */
static int
make_ready(struct decoder *d, struct waiting w)
{
	item_of(d, w)->state = ITEM_HELD;
	if (d->output != OUTPUT_IN_PLACE)
		return 0;
	return append(d, &d->ready, &d->nready, &d->ready_cap, w, "items held");
}

/* The item is output: in order, the disk is now out past it. */
static void
pass_item(struct decoder *d, struct waiting w)
{
	struct item *it = item_of(d, w);

	it->state = ITEM_DONE;
	if (d->output == OUTPUT_IN_ORDER) {
		d->cursor = it->guest + it->length;
		d->tables[w.table].next++;
	}
}

/* The window */

static int
held_before(const void *held, size_t i, uint64_t host)
{
	return ((const struct held *)held)[i].host < host;
}

/* The index of the cluster at host if the window holds it, else SIZE_MAX. */
static size_t
held_at(const struct decoder *d, uint64_t host)
{
	size_t i = search_sorted(d->held, 0, d->nheld, host, held_before);

	if (i < d->nheld && d->held[i].host == host && d->held[i].slot != NO_SLOT)
		return i;
	return SIZE_MAX;
}

uint32_t
decoder_slot(const struct decoder *d, uint64_t host)
{
	size_t i;

	if (d->mode != DECODE_FORWARD)
		return NO_SLOT;
	i = held_at(d, host - host % d->hdr.cluster_size);
	return i == SIZE_MAX ? NO_SLOT : d->held[i].slot;
}

/* The cluster held at i leaves the window; its slot may be reused. */
static void
give_back(struct decoder *d, size_t i)
{
	d->free_slots[d->nfree++] = d->held[i].slot;
	d->held[i].slot = NO_SLOT;
	d->held_live--;
}

/* Drop the entries of clusters given back, once they outnumber the rest. */
static void
compact_held(struct decoder *d)
{
	size_t kept = 0;

	if (d->nheld - d->held_live <= d->held_live + 64)
		return;
	for (size_t i = 0; i < d->nheld; i++)
		if (d->held[i].slot != NO_SLOT)
			d->held[kept++] = d->held[i];
	d->nheld = kept;
	d->evict_from = 0;
}

/*
 * Room for one more cluster: give up the oldest that nothing waits for.
 * Its bytes are then lost to any table still to come, which is refused.
 */
static int
give_up_oldest(struct decoder *d)
{
	for (size_t i = d->evict_from; i < d->nheld; i++) {
		if (d->held[i].slot == NO_SLOT || d->held[i].pins > 0)
			continue;
		d->given_up_until = max_u64(d->given_up_until,
		    d->held[i].host + d->hdr.cluster_size);
		give_back(d, i);
		d->evict_from = i + 1;
		return 1;
	}
	d->evict_from = d->nheld;
	return 0;
}

static int
window_full(struct decoder *d, uint64_t host)
{
	char size[32];

	window_size(d, size, sizeof(size));
	if (d->output == OUTPUT_IN_ORDER)
		return decoder_fail(d, IMAGE_WINDOW, host, "image offset %ju: the "
		    "reorder window (%s) is full of data that comes before its turn "
		    "(the disk is out up to guest offset %ju): decode to a file or "
		    "a device rather than a pipe, save the image to a file first, "
		    "or raise the window with -w", NUM(host), size,
		    NUM(d->cursor));
	return decoder_fail(d, IMAGE_WINDOW, host, "image offset %ju: the reorder "
	    "window (%s) is full of data that waits for the rest of its bytes: "
	    "save the image to a file first, or raise the window with -w",
	    NUM(host), size);
}

/*
 * Keep the cluster at host, the next of the pipe, in a slot: a new one
 * while the window has room, else one given back or given up.  Returns
 * 0, or -1 with d failed if every cluster held is waited for.
 */
static int
hold(struct decoder *d, uint64_t host, uint32_t *slot)
{
	struct held *held;
	uint32_t *free_slots;
	size_t cap = d->free_cap;

	compact_held(d);
	if ((held = decoder_grow(d, d->held, &d->held_cap, sizeof(*held),
	    d->nheld + 1, "clusters held")) == NULL)
		return -1;
	d->held = held;
	if (d->nfree == 0 && d->slots_made < d->slots_max) {
		/* Every slot made can be free at once: room for it now. */
		if ((free_slots = decoder_grow(d, d->free_slots, &cap,
		    sizeof(*free_slots), (size_t)d->slots_made + 1, "clusters held")) == NULL)
			return -1;
		d->free_slots = free_slots;
		d->free_cap = cap;
		d->free_slots[d->nfree++] = d->slots_made++;
	}
	if (d->nfree == 0 && !give_up_oldest(d))
		return window_full(d, host);
	*slot = d->free_slots[--d->nfree];
	d->held[d->nheld++] = (struct held){ .host = host, .slot = *slot };
	d->held_live++;
	return 0;
}

/* Once no table is to come, clusters nothing waits for are of no use. */
static void
sweep(struct decoder *d)
{
	for (size_t i = 0; i < d->nheld; i++)
		if (d->held[i].slot != NO_SLOT && d->held[i].pins == 0)
			give_back(d, i);
	d->swept = 1;
}

/* An item needs bytes the pipe has passed and the window does not hold. */
static int
refuse_passed(struct decoder *d, const struct item *it, uint64_t cluster,
    uint64_t table_host)
{
	char size[32];

	if (cluster < d->given_up_until)
		return decoder_fail(d, IMAGE_WINDOW, it->host, "data for guest offset "
		    "%ju at offset %ju comes %ju bytes before the L2 table at %ju "
		    "that maps it, farther back than the reorder window (%s) "
		    "reaches: save the image to a file first, or raise the window "
		    "with -w", NUM(it->guest), NUM(it->host), NUM(table_host - it->host),
		    NUM(table_host), window_size(d, size, sizeof(size)));
	return decoder_fail(d, IMAGE_OVERLAP, it->host, "data for guest offset %ju "
	    "at offset %ju lies in the cluster at %ju, which the stream passed as "
	    "other data", NUM(it->guest), NUM(it->host), NUM(cluster));
}

/*
 * One more item needs the cluster held at i: compressed clusters share
 * theirs, and so do the runs of one L2 entry's subclusters, which have
 * the same guest - host; anything else is two guest clusters in one.
 */
static int
claim(struct decoder *d, size_t i, const struct item *it)
{
	struct held *h = &d->held[i];
	int kind = it->stored != 0 ? CLAIM_COMPRESSED : CLAIM_RUN;
	uint64_t guest = it->guest + (h->host > it->host ? h->host - it->host : 0);

	if (h->claim == CLAIM_NONE) {
		h->claim = (uint8_t)kind;
		h->guest = guest;
		h->delta = it->guest - it->host;
	} else if (h->claim != kind || (kind == CLAIM_RUN &&
	    h->delta != it->guest - it->host)) {
		return decoder_fail(d, IMAGE_OVERLAP, h->host, "L2 entries for guest "
		    "offsets %ju and %ju both point to the host cluster at %ju",
		    NUM(min_u64(h->guest, guest)), NUM(max_u64(h->guest, guest)),
		    NUM(h->host));
	}
	h->pins++;
	return 0;
}

/* Pin the clusters of [from, to), all held, for an item that needs them. */
static int
pin(struct decoder *d, const struct item *it, uint64_t from, uint64_t to,
    uint64_t table_host)
{
	uint64_t cs = d->hdr.cluster_size;

	for (uint64_t c = from - from % cs; c < to; c += cs) {
		size_t i = held_at(d, c);

		if (i == SIZE_MAX)
			return refuse_passed(d, it, c, table_host);
		if (claim(d, i, it) != 0)
			return -1;
	}
	return 0;
}

/* The clusters of [from, to) that an output step read from, let go. */
static void
unpin(struct decoder *d, uint64_t from, uint64_t to)
{
	uint64_t cs = d->hdr.cluster_size;

	for (uint64_t c = from - from % cs; c < to; c += cs) {
		size_t i = held_at(d, c);

		if (i == SIZE_MAX || --d->held[i].pins > 0)
			continue;
		if (!unknown_matters(d))
			give_back(d, i);
		else if (i < d->evict_from)
			d->evict_from = i;
	}
}

/* Output */

/* Of stored bytes at host, those before the end of the input. */
static uint64_t
available(const struct decoder *d, uint64_t host, uint64_t stored)
{
	if (d->input_end == NOT_YET)
		return stored;
	return host < d->input_end ? min_u64(stored, d->input_end - host) : 0;
}

/*
 * The item being emitted, from the window: a compressed cluster at once,
 * a run a cluster at a time.  Its clusters are let go at the next call,
 * once the caller has read them.
 */
static enum step_kind
emit_held(struct decoder *d, struct step *step)
{
	struct item *it = item_of(d, d->emitting);
	uint64_t cs = d->hdr.cluster_size, host, length;

	d->unpin_due = 1;
	/* held in a cluster the image ends in, but past the end: as from a file */
	if (it->stored != 0 && available(d, it->host, it->stored) == 0)
		return decoder_fail(d, IMAGE_TRUNCATED, d->input_end, "image truncated "
		    "at offset %ju: the compressed data at %ju (guest offset %ju) is "
		    "missing", NUM(d->input_end), NUM(it->host), NUM(it->guest)),
		    give_error(step);
	if (it->stored != 0) {
		step_give(step, STEP_COMPRESSED, it->host, it->guest, it->length);
		step->stored = it->stored;
		step->available = available(d, it->host, it->stored);
		d->unpin_from = it->host;
		d->unpin_to = item_end(it);
		d->emitted = it->length;
	} else {
		host = it->host + d->emitted;
		length = min_u64(cs - host % cs, it->length - d->emitted);
		step_give(step, STEP_DATA, host, it->guest + d->emitted, length);
		d->unpin_from = host;
		d->unpin_to = host + length;
		d->emitted += length;
	}
	step->source = FROM_WINDOW;
	if (d->emitted == it->length) {
		d->emitting_now = 0;
		pass_item(d, d->emitting);
	}
	return step->kind;
}

static enum step_kind
start_emitting(struct decoder *d, struct waiting w, struct step *step)
{
	d->emitting = w;
	d->emitted = 0;
	d->emitting_now = 1;
	return emit_held(d, step);
}

static void
drop_items(struct decoder *d, struct l2_ref *t)
{
	free(t->items);
	d->memory -= (size_t)t->items_cap * sizeof(*t->items);
	t->items = NULL;
	t->nitems = t->items_cap = t->next = 0;
}

static enum step_kind
zeros_until(struct decoder *d, struct step *step, uint64_t until)
{
	uint64_t from = d->cursor;

	d->cursor = until;
	return step_give(step, STEP_ZEROS, 0, from, until - from);
}

/* A piece of a table to read from the pipe. */
struct piece {
	enum input_kind kind;
	uint64_t host, length;
	size_t table;		/* INPUT_L2 */
};

/*
 * The table piece nearest in the file: the L1 table's, the refcount
 * table's, or the next L2 table's, which the pipe brings in host order.
 */
static int
table_ahead(struct decoder *d, struct piece *next, int refcounts_too)
{
	uint64_t cs = d->hdr.cluster_size;
	struct piece c[3];
	int n = 0;

	if (d->l1_read < d->l1_bytes)
		c[n++] = (struct piece){ INPUT_L1, d->hdr.l1_offset + d->l1_read,
		    min_u64(cs, d->l1_bytes - d->l1_read), 0 };
	if (refcounts_too && d->refcount_table_read < d->refcount_table_bytes)
		c[n++] = (struct piece){ INPUT_REFCOUNT_TABLE,
		    d->hdr.refcount_table_offset + d->refcount_table_read, cs, 0 };
	if (d->l1_read == d->l1_bytes) {
		while (d->next_l2 < d->ntables &&
		    d->tables[d->l2_places[d->next_l2].table].read)
			d->next_l2++;
		if (d->next_l2 < d->ntables)
			c[n++] = (struct piece){ INPUT_L2, d->l2_places[d->next_l2].host,
			    cs, d->l2_places[d->next_l2].table };
	}
	for (int i = 0; i < n; i++)
		if (i == 0 || c[i].host < next->host)
			*next = c[i];
	return n > 0;
}

/*
 * Where the zeros at the cursor end: at the next item, the next table
 * not yet read, or the end of the disk.
 */
static uint64_t
zeros_end(const struct decoder *d)
{
	for (size_t k = d->cursor_table; k < d->ntables; k++) {
		const struct l2_ref *t = &d->tables[k];

		if (!t->read)
			return max_u64(d->cursor, t->index * d->hdr.l2_span);
		if (t->next < t->nitems)
			return max_u64(d->cursor, t->items[t->next].guest);
	}
	return d->hdr.virtual_size;
}

/* Whether the zeros end at guest offset end for a table not yet read. */
static int
unread_at(const struct decoder *d, uint64_t end)
{
	for (size_t k = d->cursor_table; k < d->ntables; k++) {
		const struct l2_ref *t = &d->tables[k];

		if (!t->read || t->next < t->nitems)
			return !t->read && end == t->index * d->hdr.l2_span;
	}
	return 0;
}

/*
 * What the disk holds at the cursor, if it can go out now: zeros, the
 * data of a map, or in order, an item held.  Items output in place are
 * passed over.  Returns 1 with *step set, or 0 if the output waits.
 */
static int
cursor_step(struct decoder *d, struct step *step)
{
	if (d->l1_read < d->l1_bytes)
		return 0;
	while (d->cursor < d->hdr.virtual_size) {
		struct l2_ref *t = d->cursor_table < d->ntables ?
		    &d->tables[d->cursor_table] : NULL;
		struct waiting w = { 0, (uint32_t)d->cursor_table, 0 };
		uint64_t end = zeros_end(d);
		struct piece table;
		struct item *it;

		/* zeros up to a table the stream brings next: read it first */
		if (end > d->cursor && end < d->hdr.virtual_size && t != NULL &&
		    unread_at(d, end) && table_ahead(d, &table, 1) &&
		    table.host == d->position)
			return 0;
		if (end > d->cursor)
			return zeros_until(d, step, end), 1;
		if (t == NULL || !t->read)
			return 0;
		if (t->next == t->nitems) {
			drop_items(d, t);
			d->cursor_table++;
			continue;
		}
		w.item = t->next;
		it = &t->items[t->next];
		if (d->output == OUTPUT_MAP) {
			step_give(step, STEP_DATA, it->host, it->guest, it->length);
			step->source = FROM_NOWHERE;
			d->cursor += it->length;
			t->next++;
			return 1;
		}
		if (it->state == ITEM_DONE) {
			d->cursor = it->guest + it->length;
			t->next++;
			continue;
		}
		if (d->output == OUTPUT_IN_ORDER && it->state == ITEM_HELD)
			return start_emitting(d, w, step), 1;
		return 0;
	}
	return 0;
}

/* Input */

static const char *
piece_name(enum input_kind kind)
{
	return kind == INPUT_L1 ? "L1 table" : kind == INPUT_L2 ? "L2 table" :
	    "refcount table";
}

static enum step_kind
ask_table(struct decoder *d, struct step *step, const struct piece *c)
{
	d->awaiting_table = 1;
	d->asked_for = c->kind;
	d->asked_table = c->table;
	step_give(&d->asked, STEP_TABLE, c->host, 0, c->length);
	return step_give(step, STEP_TABLE, c->host, 0, c->length);
}

static enum step_kind
skip_to(struct decoder *d, struct step *step, uint64_t to)
{
	uint64_t from = d->position;

	d->position = to;
	d->asked_for = INPUT_NONE;
	step_give(&d->asked, STEP_SKIP, from, 0, to - from);
	return step_give(step, STEP_SKIP, from, 0, to - from);
}

static enum step_kind
give_hold(struct decoder *d, struct step *step, uint32_t slot)
{
	uint64_t host = d->position, cs = d->hdr.cluster_size;

	d->position += cs;
	d->asked_for = INPUT_NONE;
	step_give(&d->asked, STEP_HOLD, host, 0, cs);
	step_give(step, STEP_HOLD, host, 0, cs);
	step->slot = slot;
	return STEP_HOLD;
}

/* In order, only the item at the cursor may go out straight from the pipe. */
static int
may_stream(const struct decoder *d, struct waiting w)
{
	const struct item *it = &d->tables[w.table].items[w.item];

	/* Only a run of whole clusters: a subcluster's neighbours may follow. */
	if (it->stored != 0 || w.need != it->host || it->host != d->position ||
	    ((it->host + it->length) % d->hdr.cluster_size != 0 &&
	    it->guest + it->length != d->hdr.virtual_size))
		return 0;
	if (d->output == OUTPUT_IN_PLACE)
		return 1;
	return w.table == d->cursor_table && w.item == d->tables[w.table].next &&
	    it->guest == d->cursor;
}

/* A run of data output as the pipe brings it. */
/* Whether item next comes right after item w in guest order. */
static int
follows(const struct decoder *d, struct waiting w, struct waiting next)
{
	if (next.table == w.table)
		return next.item == w.item + 1;
	return next.table == w.table + 1 && next.item == 0 &&
	    w.item + 1 == d->tables[w.table].nitems;
}

/* The need of the second item in the heap, the first being about to go. */
static uint64_t
second_need(const struct decoder *d)
{
	uint64_t need = NOT_YET;

	for (size_t i = 1; i <= 2 && i < d->nwaiting; i++)
		need = min_u64(need, d->waiting[i].need);
	return need;
}

/*
 * Stream the run at the position, and the runs after it that continue it
 * in both the file and the disk, across L2 tables too: a disk written in
 * order goes out in as few steps as it has gaps.
 */
static enum step_kind
stream_run(struct decoder *d, struct step *step, struct waiting w)
{
	struct item *it = item_of(d, w);
	uint64_t host = it->host, guest = it->guest, length = it->length;
	char desc[64];

	pass_item(d, w);
	while (d->nwaiting > 0 && d->waiting[0].need == host + length) {
		struct waiting next = d->waiting[0];
		const struct item *more = item_of(d, next);

		if (!follows(d, w, next) || more->guest != guest + length ||
		    more->stored != 0 || more->host != next.need ||
		    (more->length % d->hdr.cluster_size != 0 &&
		    more->guest + more->length != d->hdr.virtual_size) ||
		    second_need(d) < item_end(more) ||
		    tables_metadata_in(d, more->host, item_end(more), desc,
		    sizeof(desc)) != UINT64_MAX)
			break;
		next_waiting(d);
		pass_item(d, next);
		length += more->length;
		w = next;
	}
	d->position = host + length;
	d->asked_for = INPUT_DATA;
	step_give(&d->asked, STEP_DATA, host, guest, length);
	return step_give(step, STEP_DATA, host, guest, length);
}

static int
refuse_in_metadata(struct decoder *d, const struct item *it, uint64_t cluster,
    const char *desc)
{
	uint64_t guest = it->guest + (cluster > it->host ? cluster - it->host : 0);

	return decoder_fail(d, IMAGE_OVERLAP, cluster, "data for guest offset %ju "
	    "at offset %ju lies in %s", NUM(guest), NUM(max_u64(cluster, it->host)),
	    desc);
}

/*
 * The cluster at the position holds bytes of items: one run that may go
 * out now streams from the pipe; else the cluster is held, pinned by
 * each of its items.
 */
static enum step_kind
take_cluster(struct decoder *d, struct step *step)
{
	uint64_t cs = d->hdr.cluster_size, p = d->position;
	uint32_t slot;
	char desc[64];

	d->npassing = 0;
	while (d->nwaiting > 0 && d->waiting[0].need < p + cs) {
		struct waiting w = next_waiting(d);

		if (w.need < p)
			return refuse_passed(d, item_of(d, w), w.need - w.need % cs,
			    d->tables[w.table].host), give_error(step);
		if (append(d, &d->passing, &d->npassing, &d->passing_cap, w,
		    "items in one cluster") != 0)
			return give_error(step);
	}
	if (tables_metadata_at(d, p, desc, sizeof(desc)))
		return refuse_in_metadata(d, item_of(d, d->passing[0]), p, desc),
		    give_error(step);
	if (d->npassing == 1 && may_stream(d, d->passing[0])) {
		const struct item *it = item_of(d, d->passing[0]);
		uint64_t meta = tables_metadata_in(d, p, p + it->length, desc, sizeof(desc));

		if (meta != UINT64_MAX)
			return refuse_in_metadata(d, it, meta, desc), give_error(step);
		return stream_run(d, step, d->passing[0]);
	}
	if (hold(d, p, &slot) != 0)
		return give_error(step);
	for (size_t k = 0; k < d->npassing; k++) {
		struct waiting w = d->passing[k];
		int status;

		if (claim(d, d->nheld - 1, item_of(d, w)) != 0)
			return give_error(step);
		if (item_end(item_of(d, w)) > p + cs)
			status = wait_for(d, p + cs, w.table, w.item);
		else
			status = make_ready(d, w);
		if (status != 0)
			return give_error(step);
	}
	return give_hold(d, step, slot);
}

/*
 * A cluster no table has mapped yet, held while one may; with no room,
 * given up at once, as the window gives up its oldest such cluster.
 */
static enum step_kind
hold_unknown(struct decoder *d, struct step *step)
{
	uint64_t p = d->position, cs = d->hdr.cluster_size;
	uint32_t slot;

	if (d->slots_made < d->slots_max || d->nfree > 0 || give_up_oldest(d))
		return hold(d, p, &slot) != 0 ? give_error(step) : give_hold(d, step, slot);
	d->given_up_until = p + cs;
	return skip_to(d, step, p + cs);
}

/*
 * The next input step: the rest of a table's cluster, a table, a cluster
 * items need, metadata skipped, a cluster no table has mapped yet held
 * while one may, else a skip to the next of these.  Returns STEP_DONE if
 * no byte of the pipe is needed any more.
 */
static enum step_kind
input_step(struct decoder *d, struct step *step)
{
	uint64_t cs = d->hdr.cluster_size, p = d->position, next = NOT_YET;
	struct piece table;
	char desc[64];

	if (p % cs != 0)
		return skip_to(d, step, p - p % cs + cs);
	if (table_ahead(d, &table, 1)) {
		if (table.host < p)
			return decoder_fail(d, IMAGE_ORDER, table.host, "the %s at offset "
			    "%ju lies behind offset %ju, where the stream already is"
			    IMAGE_ORDER_ADVICE, piece_name(table.kind), NUM(table.host),
			    NUM(p)), give_error(step);
		if (table.host == p)
			return ask_table(d, step, &table);
		next = table.host;
	}
	if (d->nwaiting > 0) {
		if (d->waiting[0].need < p + cs)
			return take_cluster(d, step);
		next = min_u64(next, d->waiting[0].need - d->waiting[0].need % cs);
	}
	if (tables_metadata_at(d, p, desc, sizeof(desc)))
		return skip_to(d, step, p + cs);
	if (unknown_matters(d))
		return hold_unknown(d, step);
	if (next == NOT_YET)
		return step_give(step, STEP_DONE, 0, 0, 0);
	return skip_to(d, step, next);
}

/*
 * The pipe has ended: compressed data still to come reads as zeros, as
 * QEMU reads past the end of a file; a run or a table still to come is
 * missing.
 */
static int
input_over(struct decoder *d)
{
	uint64_t cs = d->hdr.cluster_size, end = d->input_end;
	struct piece table;

	d->input_over = 1;
	if (table_ahead(d, &table, 1))
		return decoder_fail(d, IMAGE_TRUNCATED, end, "image truncated at "
		    "offset %ju, before the %s at %ju", NUM(end), piece_name(table.kind),
		    NUM(table.host));
	while (d->nwaiting > 0) {
		struct waiting w = next_waiting(d);
		const struct item *it = item_of(d, w);
		uint64_t missing = w.need - w.need % cs;

		if (it->stored == 0)
			return decoder_fail(d, IMAGE_TRUNCATED, end, "image truncated at "
			    "offset %ju: the data cluster at %ju (guest offset %ju) is "
			    "missing", NUM(end), NUM(missing),
			    NUM(it->guest + (missing - it->host)));
		/* as from a file, its first byte must be in the image */
		if (it->host >= end)
			return decoder_fail(d, IMAGE_TRUNCATED, end, "image truncated at "
			    "offset %ju: the compressed data at %ju (guest offset %ju) is "
			    "missing", NUM(end), NUM(it->host), NUM(it->guest));
		if (make_ready(d, w) != 0)
			return -1;
	}
	return 0;
}

int
stream_place(struct decoder *d, size_t table)
{
	struct l2_ref *t = &d->tables[table];

	for (uint32_t i = 0; i < t->nitems; i++) {
		struct item *it = &t->items[i];
		struct waiting w = { 0, (uint32_t)table, i };
		uint64_t end = item_end(it);
		int status;

		if (d->output == OUTPUT_MAP) {
			it->state = ITEM_DONE;
			continue;
		}
		if (it->host >= d->position) {
			if (wait_for(d, it->host, w.table, i) != 0)
				return -1;
			continue;
		}
		if (pin(d, it, it->host, min_u64(end, d->position), t->host) != 0)
			return -1;
		if (end > d->position)
			status = wait_for(d, d->position, w.table, i);
		else
			status = make_ready(d, w);
		if (status != 0)
			return -1;
	}
	return 0;
}

enum step_kind
stream_next(struct decoder *d, struct step *step)
{
	d->slots_max = (uint32_t)min_u64(d->window_max / d->hdr.cluster_size,
	    UINT32_MAX - 1);
	if (d->unpin_due) {
		d->unpin_due = 0;
		unpin(d, d->unpin_from, d->unpin_to);
	}
	if (!d->swept && !unknown_matters(d))
		sweep(d);
	if (d->emitting_now)
		return emit_held(d, step);
	if (d->next_ready < d->nready)
		return start_emitting(d, d->ready[d->next_ready++], step);
	d->next_ready = d->nready = 0;
	if (cursor_step(d, step))
		return step->kind;
	/* The refcount table too, as a file's is checked, if the stream has one. */
	if (d->cursor == d->hdr.virtual_size &&
	    d->refcount_table_read == d->refcount_table_bytes)
		return step_give(step, STEP_DONE, 0, 0, 0);
	if (d->input_end == NOT_YET) {
		if (input_step(d, step) != STEP_DONE)
			return step->kind;
	} else if (!d->input_over) {
		return input_over(d) != 0 ? give_error(step) : stream_next(d, step);
	}
	return decoder_fail(d, IMAGE_MISUSE, d->position, "the disk stops at guest "
	    "offset %ju with nothing left to read", NUM(d->cursor)), give_error(step);
}

void
stream_free(struct decoder *d)
{
	free(d->held);
	free(d->free_slots);
	free(d->waiting);
	free(d->ready);
	free(d->passing);
	d->held = NULL;
	d->free_slots = NULL;
	d->waiting = d->ready = d->passing = NULL;
}

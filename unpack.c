/*
 * unpack.c: compressed clusters inflated in batches on worker threads
 * (see unpack.h).  The batches form a ring: the caller fills the one at
 * the head, the workers inflate those sent, the oldest first, and the
 * caller takes them back from the tail, so that the output keeps the
 * order of the input.  One mutex guards the states; the bytes of a batch
 * belong to whoever its state says.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "unpack.h"

#define BATCH_BYTES	((size_t)1 << 20)

enum batch_state { FREE, FILLING, SENT, INFLATING, DONE, TAKEN };

struct batch {
	enum batch_state state;
	unsigned char *in, *out;
	size_t in_used, count;
	struct unpacked *clusters;
	size_t *offsets;		/* of each cluster's stored bytes in in */
	size_t *stored;
};

struct unpacker {
	size_t cluster_size, in_cap, out_cap, max_count;
	struct batch *ring;
	size_t nbatches, head, tail;	/* head: being filled; tail: oldest */
	pthread_mutex_t lock;
	pthread_cond_t sent, done;
	pthread_t *threads;
	unsigned nthreads, started;
	int stopping;
	unsigned compression_type;
	void *caller_codec;		/* with no threads */
};

/* Inflate every cluster of a batch; no lock is needed, the batch is ours. */
static void
inflate_batch(struct unpacker *u, struct batch *b, void *codec)
{
	for (size_t i = 0; i < b->count; i++) {
		struct unpacked *c = &b->clusters[i];
		unsigned char *out = b->out + i * u->cluster_size;
		struct codec_error err;

		c->bytes = out;
		c->why = NULL;
		if (codec_decode(u->compression_type, codec, out, u->cluster_size,
		    b->in + b->offsets[i], b->stored[i], &err) != 0) {
			c->why = err.why;
			c->at = err.at;
		}
	}
}

static void *
work(void *arg)
{
	struct unpacker *u = arg;
	void *z = codec_new(u->compression_type);

	pthread_mutex_lock(&u->lock);
	for (;;) {
		struct batch *b = NULL;

		for (size_t k = 0; k < u->nbatches && b == NULL; k++) {
			struct batch *next = &u->ring[(u->tail + k) % u->nbatches];

			if (next->state == SENT)
				b = next;
		}
		if (b == NULL) {
			if (u->stopping)
				break;
			pthread_cond_wait(&u->sent, &u->lock);
			continue;
		}
		b->state = INFLATING;
		pthread_mutex_unlock(&u->lock);
		if (z != NULL) {
			inflate_batch(u, b, z);
		} else {
			for (size_t i = 0; i < b->count; i++)
				b->clusters[i].why = "out of memory";
		}
		pthread_mutex_lock(&u->lock);
		b->state = DONE;
		pthread_cond_broadcast(&u->done);
	}
	pthread_mutex_unlock(&u->lock);
	codec_free(z);
	return NULL;
}

static int
make_batch(struct unpacker *u, struct batch *b)
{
	if (b->in != NULL)
		return 0;
	b->in = malloc(u->in_cap);
	b->out = malloc(u->out_cap);
	b->clusters = calloc(u->max_count, sizeof(*b->clusters));
	b->offsets = calloc(u->max_count, sizeof(*b->offsets));
	b->stored = calloc(u->max_count, sizeof(*b->stored));
	return b->in != NULL && b->out != NULL && b->clusters != NULL &&
	    b->offsets != NULL && b->stored != NULL ? 0 : -1;
}

struct unpacker *
unpacker_new(size_t cluster_size, unsigned compression_type, unsigned threads)
{
	struct unpacker *u = calloc(1, sizeof(*u));

	if (u == NULL)
		return NULL;
	u->cluster_size = cluster_size;
	u->compression_type = compression_type;
	u->out_cap = cluster_size > BATCH_BYTES ? cluster_size : BATCH_BYTES;
	u->in_cap = 2 * cluster_size > BATCH_BYTES ? 2 * cluster_size : BATCH_BYTES;
	u->max_count = u->out_cap / cluster_size;
	u->nbatches = threads + 2;
	u->ring = calloc(u->nbatches, sizeof(*u->ring));
	u->threads = calloc(threads > 0 ? threads : 1, sizeof(*u->threads));
	if (threads == 0)
		u->caller_codec = codec_new(compression_type);
	if (u->ring == NULL || u->threads == NULL ||
	    (threads == 0 && u->caller_codec == NULL) ||
	    pthread_mutex_init(&u->lock, NULL) != 0) {
		free(u->ring);
		free(u->threads);
		codec_free(u->caller_codec);
		free(u);
		return NULL;
	}
	pthread_cond_init(&u->sent, NULL);
	pthread_cond_init(&u->done, NULL);
	u->nthreads = threads;
	for (; u->started < threads; u->started++)
		if (pthread_create(&u->threads[u->started], NULL, work, u) != 0) {
			unpacker_free(u);
			return NULL;
		}
	return u;
}

void
unpacker_free(struct unpacker *u)
{
	if (u == NULL)
		return;
	pthread_mutex_lock(&u->lock);
	u->stopping = 1;
	pthread_cond_broadcast(&u->sent);
	pthread_mutex_unlock(&u->lock);
	for (unsigned i = 0; i < u->started; i++)
		pthread_join(u->threads[i], NULL);
	for (size_t k = 0; k < u->nbatches; k++) {
		free(u->ring[k].in);
		free(u->ring[k].out);
		free(u->ring[k].clusters);
		free(u->ring[k].offsets);
		free(u->ring[k].stored);
	}
	pthread_cond_destroy(&u->sent);
	pthread_cond_destroy(&u->done);
	pthread_mutex_destroy(&u->lock);
	free(u->ring);
	free(u->threads);
	codec_free(u->caller_codec);
	free(u);
}

/* A batch's state, which a worker may be changing. */
static enum batch_state
state_of(struct unpacker *u, const struct batch *b)
{
	enum batch_state state;

	if (u->nthreads == 0)
		return b->state;
	pthread_mutex_lock(&u->lock);
	state = b->state;
	pthread_mutex_unlock(&u->lock);
	return state;
}

/* Set a batch's state, which a worker may be looking at. */
static void
set_state(struct unpacker *u, struct batch *b, enum batch_state state)
{
	if (u->nthreads > 0)
		pthread_mutex_lock(&u->lock);
	b->state = state;
	if (state == SENT)
		pthread_cond_signal(&u->sent);
	if (u->nthreads > 0)
		pthread_mutex_unlock(&u->lock);
}

/* The batch being filled goes to the workers, or is inflated here. */
static void
send(struct unpacker *u)
{
	struct batch *b = &u->ring[u->head];

	if (state_of(u, b) != FILLING)
		return;
	u->head = (u->head + 1) % u->nbatches;
	if (u->nthreads == 0) {
		inflate_batch(u, b, u->caller_codec);
		b->state = DONE;
		return;
	}
	set_state(u, b, SENT);
}

/* The batch last taken is free again. */
static void
give_back_taken(struct unpacker *u)
{
	struct batch *b = &u->ring[u->tail];

	if (state_of(u, b) != TAKEN)
		return;
	b->count = b->in_used = 0;
	set_state(u, b, FREE);
	u->tail = (u->tail + 1) % u->nbatches;
}

unsigned char *
unpacker_room(struct unpacker *u, size_t stored)
{
	struct batch *b = &u->ring[u->head];

	give_back_taken(u);
	if (state_of(u, b) == FILLING && (b->count == u->max_count ||
	    u->in_cap - b->in_used < stored)) {
		send(u);
		b = &u->ring[u->head];
	}
	switch (state_of(u, b)) {
	case FREE:
		if (make_batch(u, b) != 0)
			return NULL;
		set_state(u, b, FILLING);
		/* FALLTHROUGH */
	case FILLING:
		return b->in + b->in_used;
	default:
		return NULL;
	}
}

void
unpacker_add(struct unpacker *u, uint64_t guest, uint64_t host, size_t length,
    size_t stored)
{
	struct batch *b = &u->ring[u->head];

	b->clusters[b->count] = (struct unpacked){ guest, host, length, NULL, NULL, 0 };
	b->offsets[b->count] = b->in_used;
	b->stored[b->count] = stored;
	b->count++;
	b->in_used += stored;
	if (b->count == u->max_count)
		send(u);
}

const struct unpacked *
unpacker_take(struct unpacker *u, int wait, size_t *count)
{
	struct batch *b;
	enum batch_state state;

	give_back_taken(u);
	b = &u->ring[u->tail];
	state = state_of(u, b);
	if (state == FREE || (state == FILLING && !wait))
		return NULL;
	if (state == FILLING)
		send(u);
	if (u->nthreads > 0) {
		pthread_mutex_lock(&u->lock);
		while (wait && b->state != DONE)
			pthread_cond_wait(&u->done, &u->lock);
		state = b->state;
		pthread_mutex_unlock(&u->lock);
		if (state != DONE)
			return NULL;
	}
	set_state(u, b, TAKEN);
	*count = b->count;
	return b->clusters;
}

/*
 * t/bench-zstd.c: the speed of zstd_decode_cluster against libzstd, both
 * decoding the clusters of a file as QEMU compressed them.
 *
 *	bench-zstd [-c cluster_size] [-l level] [-r rounds] FILE
 *
 * Cuts FILE into clusters (64 KiB unless -c says; the last one padded
 * with zeros), compresses each as qemu-img convert -c -o
 * compression_type=zstd does (level 3 unless -l says), leaving out the
 * clusters QEMU would not store compressed (all zeros, or no smaller),
 * and checks that both decoders give each cluster back.  Then each round
 * (5 unless -r says) times ours over all the clusters, then libzstd
 * called as QEMU calls it (a new streaming context a cluster), then
 * libzstd with one context kept (ZSTD_decompressDCtx, its best case), in
 * CPU time of the one thread, so that a busy machine that takes the core
 * away now and then counts less.  Prints the median MB/s of output of
 * each (MB = 10^6 bytes) and the median of the rounds' ratios of ours to
 * each.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BENCH_NAME "bench-zstd"
#include "bench_util.h"
#include "zstd_decode.h"
#include "zstd_qemu.h"

struct clusters {
	unsigned char *streams;		/* every compressed cluster, end to end */
	size_t *ends;			/* where each ends in streams */
	size_t count, cluster_size, skipped;
};

/* The clusters of data[0..len) that QEMU would store compressed, compressed. */
static void
compress_clusters(struct clusters *c, const unsigned char *data, size_t len,
    int level, unsigned char **originals)
{
	size_t cs = c->cluster_size, total = (len + cs - 1) / cs, used = 0;
	unsigned char *cluster = xmalloc(cs);

	c->streams = xmalloc(total * cs);
	c->ends = xmalloc(total * sizeof(*c->ends));
	*originals = xmalloc(total * cs);
	c->count = c->skipped = 0;
	for (size_t i = 0; i < total; i++) {
		size_t n = len - i * cs < cs ? len - i * cs : cs, got;

		memset(cluster, 0, cs);
		memcpy(cluster, data + i * cs, n);
		if (all_zero(cluster, cs) ||
		    (got = qemu_zstd_compress(c->streams + used, cs - 1, cluster, cs,
		    level)) == 0) {
			c->skipped++;
			continue;
		}
		memcpy(*originals + c->count * cs, cluster, cs);
		used += got;
		c->ends[c->count++] = used;
	}
	free(cluster);
}

/* Who decodes in decode_all. */
enum decoder { OURS, QEMU_LIBZSTD, ONE_DCTX };

/* Decode every cluster into out with who; seconds taken. */
static double
decode_all(const struct clusters *c, struct zstd_decoder *z, ZSTD_DCtx *dctx,
    unsigned char *out, const unsigned char *originals, enum decoder who)
{
	static const char *const wrong[] = { "zstd_decode_cluster decodes it wrong",
	    "libzstd decodes it wrong", "ZSTD_decompressDCtx decodes it wrong" };
	double start = now();

	for (size_t i = 0; i < c->count; i++) {
		size_t from = i ? c->ends[i - 1] : 0, len = c->ends[i] - from;
		struct zstd_error err;
		int ret;

		if (who == QEMU_LIBZSTD)
			ret = qemu_zstd_decompress(out, c->cluster_size, c->streams + from, len);
		else if (who == ONE_DCTX)
			ret = ZSTD_decompressDCtx(dctx, out, c->cluster_size, c->streams + from,
			    len) == c->cluster_size ? 0 : -1;
		else
			ret = zstd_decode_cluster(z, out, c->cluster_size, c->streams + from,
			    len, &err);
		if (ret != 0 || (originals != NULL &&
		    memcmp(out, originals + i * c->cluster_size, c->cluster_size) != 0)) {
			errno = 0;
			fprintf(stderr, "cluster %zu: ", i);
			die(wrong[who]);
		}
	}
	return now() - start;
}

static int
usage(void)
{
	fprintf(stderr, "usage: bench-zstd [-c cluster_size] [-l level] [-r 1-99] FILE\n");
	return 2;
}

int
main(int argc, char **argv)
{
	struct clusters c = { NULL, NULL, 0, 65536, 0 };
	unsigned char *data, *originals, *out;
	struct zstd_decoder *z = xmalloc(sizeof(*z));
	ZSTD_DCtx *dctx = ZSTD_createDCtx();
	double ours[99], qemu[99], one[99], to_qemu[99], to_one[99], bytes;
	int rounds = 5, level = 3, opt;
	size_t len;

	while ((opt = getopt(argc, argv, "c:l:r:")) != -1) {
		if (opt == 'c')
			c.cluster_size = parse_size(optarg);
		else if (opt == 'l')
			level = atoi(optarg);
		else if (opt == 'r' && (rounds = atoi(optarg)) >= 1 && rounds <= 99)
			continue;
		else
			return usage();
	}
	if (optind != argc - 1 || dctx == NULL)
		return usage();
	data = read_file(argv[optind], &len);
	compress_clusters(&c, data, len, level, &originals);
	free(data);
	if (c.count == 0) {
		errno = 0;
		die("no cluster of the file is stored compressed");
	}
	out = xmalloc(c.cluster_size);
	for (enum decoder who = OURS; who <= ONE_DCTX; who++)
		decode_all(&c, z, dctx, out, originals, who);
	free(originals);
	bytes = (double)c.count * (double)c.cluster_size;
	for (int r = 0; r < rounds; r++) {
		ours[r] = bytes / decode_all(&c, z, dctx, out, NULL, OURS) / 1e6;
		qemu[r] = bytes / decode_all(&c, z, dctx, out, NULL, QEMU_LIBZSTD) / 1e6;
		one[r] = bytes / decode_all(&c, z, dctx, out, NULL, ONE_DCTX) / 1e6;
		to_qemu[r] = ours[r] / qemu[r];
		to_one[r] = ours[r] / one[r];
	}
	printf("%s: %zu clusters of %zu compressed at level %d to %.1f%% (%zu left out), "
	    "%d rounds\n", argv[optind], c.count, c.cluster_size, level,
	    100.0 * (double)c.ends[c.count - 1] / bytes, c.skipped, rounds);
	printf("zstd_decode_cluster   %8.1f MB/s\n", median(ours, rounds));
	printf("libzstd as QEMU calls %8.1f MB/s\n", median(qemu, rounds));
	printf("libzstd, one context  %8.1f MB/s\n", median(one, rounds));
	printf("ratio to QEMU's       %8.2f\n", median(to_qemu, rounds));
	printf("ratio to one context  %8.2f\n", median(to_one, rounds));
	ZSTD_freeDCtx(dctx);
	return 0;
}

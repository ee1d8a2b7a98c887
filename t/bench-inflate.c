/*
 * t/bench-inflate.c: the speed of inflate_cluster against zlib's inflate,
 * both decoding the clusters of a file as QEMU compressed them.
 *
 *	bench-inflate [-c cluster_size] [-r rounds] FILE
 *
 * Cuts FILE into clusters (64 KiB unless -c says; the last one padded
 * with zeros), compresses each as qemu-img convert -c does, leaving out
 * the clusters QEMU would not store compressed (all zeros, or no
 * smaller), and checks that both decoders give each cluster back.  Then
 * each round (5 unless -r says) times ours over all the clusters, then
 * zlib called as QEMU calls it, in CPU time of the one thread, so that a
 * busy machine that takes the core away now and then counts less.
 * Prints the median MB/s of output of each (MB = 10^6 bytes) and the
 * median of the rounds' ratios.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BENCH_NAME "bench-inflate"
#include "bench_util.h"
#include "inflate.h"
#include "zlib_qemu.h"

struct clusters {
	unsigned char *streams;		/* every compressed cluster, end to end */
	size_t *ends;			/* where each ends in streams */
	size_t count, cluster_size, skipped;
};

/* The clusters of data[0..len) that QEMU would store compressed, compressed. */
static void
compress_clusters(struct clusters *c, const unsigned char *data, size_t len,
    unsigned char **originals)
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
		    (got = qemu_deflate(c->streams + used, cs - 1, cluster, cs)) == 0) {
			c->skipped++;
			continue;
		}
		memcpy(*originals + c->count * cs, cluster, cs);
		used += got;
		c->ends[c->count++] = used;
	}
	free(cluster);
}

/* Decode every cluster into out with ours (zlib if use_zlib); seconds taken. */
static double
decode_all(const struct clusters *c, struct inflater *z, unsigned char *out,
    const unsigned char *originals, int use_zlib)
{
	double start = now();

	for (size_t i = 0; i < c->count; i++) {
		size_t from = i ? c->ends[i - 1] : 0;
		struct inflate_error err;
		int ret;

		if (use_zlib)
			ret = qemu_inflate(out, c->cluster_size, c->streams + from,
			    c->ends[i] - from);
		else
			ret = inflate_cluster(z, out, c->cluster_size, c->streams + from,
			    c->ends[i] - from, &err);
		if (ret != 0 || (originals != NULL &&
		    memcmp(out, originals + i * c->cluster_size, c->cluster_size) != 0)) {
			errno = 0;
			fprintf(stderr, "cluster %zu: ", i);
			die(use_zlib ? "zlib decodes it wrong" :
			    "inflate_cluster decodes it wrong");
		}
	}
	return now() - start;
}

static int
usage(void)
{
	fprintf(stderr, "usage: bench-inflate [-c cluster_size] [-r 1-99] FILE\n");
	return 2;
}

int
main(int argc, char **argv)
{
	struct clusters c = { NULL, NULL, 0, 65536, 0 };
	unsigned char *data, *originals, *out;
	struct inflater *z = xmalloc(sizeof(*z));
	double ours[99], theirs[99], ratios[99], bytes;
	int rounds = 5, opt;
	size_t len;

	while ((opt = getopt(argc, argv, "c:r:")) != -1) {
		if (opt == 'c')
			c.cluster_size = parse_size(optarg);
		else if (opt == 'r' && (rounds = atoi(optarg)) >= 1 && rounds <= 99)
			continue;
		else
			return usage();
	}
	if (optind != argc - 1)
		return usage();
	data = read_file(argv[optind], &len);
	compress_clusters(&c, data, len, &originals);
	free(data);
	if (c.count == 0) {
		errno = 0;
		die("no cluster of the file is stored compressed");
	}
	out = xmalloc(c.cluster_size);
	decode_all(&c, z, out, originals, 0);
	decode_all(&c, z, out, originals, 1);
	free(originals);
	bytes = (double)c.count * (double)c.cluster_size;
	for (int r = 0; r < rounds; r++) {
		ours[r] = bytes / decode_all(&c, z, out, NULL, 0) / 1e6;
		theirs[r] = bytes / decode_all(&c, z, out, NULL, 1) / 1e6;
		ratios[r] = ours[r] / theirs[r];
	}
	printf("%s: %zu clusters of %zu compressed to %.1f%% (%zu left out), %d rounds\n",
	    argv[optind], c.count, c.cluster_size,
	    100.0 * (double)c.ends[c.count - 1] / bytes, c.skipped, rounds);
	printf("inflate_cluster %8.1f MB/s\n", median(ours, rounds));
	printf("zlib            %8.1f MB/s\n", median(theirs, rounds));
	printf("ratio           %8.2f\n", median(ratios, rounds));
	return 0;
}

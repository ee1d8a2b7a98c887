/*
 * t/bench-deflate.c: deflate_cluster against zlib's deflate called as
 * QEMU calls it, both compressing the clusters of a file.
 *
 *	bench-deflate [-c cluster_size] [-r rounds] FILE
 *
 * Cuts FILE into clusters (64 KiB unless -c says; the last one padded
 * with zeros), leaving out those all zeros, which qemu-img convert -c
 * does not write.  Each cluster is compressed into cluster_size - 1 bytes
 * as QEMU asks; one that does not fit is stored as it is, and counts
 * whole.  Ours must give back each cluster through zlib's inflate as
 * QEMU calls it.  Each round (5 unless -r says) times ours over all the
 * clusters, then zlib, in CPU time of the one thread, so that a busy
 * machine that takes the core away now and then counts less.  Prints the
 * median MB/s of input of each (MB = 10^6 bytes), the bytes each stores,
 * and the ratios of ours to zlib's.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BENCH_NAME "bench-deflate"
#include "bench_util.h"
#include "deflate.h"
#include "zlib_qemu.h"

struct clusters {
	unsigned char *data;	/* the clusters kept, end to end */
	size_t count, cluster_size, skipped;
};

/* What one compressor stores for all the clusters. */
struct outcome {
	unsigned long long bytes;	/* compressed, or a whole cluster when it did not fit */
	size_t raw;			/* clusters stored as they are */
};

/* The clusters of file[0..len) that are not all zeros, padded. */
static void
cut_clusters(struct clusters *c, const unsigned char *file, size_t len)
{
	size_t cs = c->cluster_size, total = (len + cs - 1) / cs;

	c->data = xmalloc(total * cs);
	c->count = c->skipped = 0;
	for (size_t i = 0; i < total; i++) {
		size_t n = len - i * cs < cs ? len - i * cs : cs;
		unsigned char *cluster = c->data + c->count * cs;

		memset(cluster, 0, cs);
		memcpy(cluster, file + i * cs, n);
		if (all_zero(cluster, cs))
			c->skipped++;
		else
			c->count++;
	}
}

/*
 * Compress every cluster into out with ours (zlib's if use_zlib), adding
 * up in *o what is stored; with check, ours must decode back.  Seconds taken.
 */
static double
compress_all(const struct clusters *c, struct deflater *z, unsigned char *out,
    unsigned char *back, int use_zlib, int check, struct outcome *o)
{
	size_t cs = c->cluster_size;
	double start = now();

	o->bytes = 0;
	o->raw = 0;
	for (size_t i = 0; i < c->count; i++) {
		const unsigned char *cluster = c->data + i * cs;
		size_t n = use_zlib ? qemu_deflate(out, cs - 1, cluster, cs) :
		    deflate_cluster(z, out, cs - 1, cluster, cs);

		if (n == 0)
			o->raw++;
		o->bytes += n == 0 ? cs : n;
		if (check && n > 0 && (qemu_inflate(back, cs, out, n) != 0 ||
		    memcmp(back, cluster, cs) != 0)) {
			errno = 0;
			fprintf(stderr, "cluster %zu: ", i);
			die("zlib does not decode it back");
		}
	}
	return now() - start;
}

static int
usage(void)
{
	fprintf(stderr, "usage: bench-deflate [-c cluster_size] [-r 1-99] FILE\n");
	return 2;
}

int
main(int argc, char **argv)
{
	struct clusters c = { NULL, 0, 65536, 0 };
	struct deflater *z = xmalloc(sizeof(*z));
	struct outcome mine, zlib;
	unsigned char *file, *out, *back;
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
	file = read_file(argv[optind], &len);
	cut_clusters(&c, file, len);
	free(file);
	if (c.count == 0) {
		errno = 0;
		die("every cluster of the file is zeros");
	}
	out = xmalloc(c.cluster_size);
	back = xmalloc(c.cluster_size);
	compress_all(&c, z, out, back, 0, 1, &mine);
	compress_all(&c, z, out, back, 1, 0, &zlib);
	bytes = (double)c.count * (double)c.cluster_size;
	for (int r = 0; r < rounds; r++) {
		ours[r] = bytes / compress_all(&c, z, out, back, 0, 0, &mine) / 1e6;
		theirs[r] = bytes / compress_all(&c, z, out, back, 1, 0, &zlib) / 1e6;
		ratios[r] = ours[r] / theirs[r];
	}
	printf("%s: %zu clusters of %zu (%zu of zeros left out), %d rounds\n",
	    argv[optind], c.count, c.cluster_size, c.skipped, rounds);
	printf("deflate_cluster %8.1f MB/s %12llu bytes (%5.2f%%), %zu stored as they are\n",
	    median(ours, rounds), mine.bytes, 100.0 * (double)mine.bytes / bytes, mine.raw);
	printf("zlib            %8.1f MB/s %12llu bytes (%5.2f%%), %zu stored as they are\n",
	    median(theirs, rounds), zlib.bytes, 100.0 * (double)zlib.bytes / bytes, zlib.raw);
	printf("ratio           %8.2f x speed, %.4f x size\n", median(ratios, rounds),
	    (double)mine.bytes / (double)zlib.bytes);
	free(back);
	free(out);
	free(c.data);
	free(z);
	return 0;
}

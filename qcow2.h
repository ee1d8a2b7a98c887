/*
 * qcow2.h: the qcow2 format, as the writer (layout.c, meta.c) and the
 * reader (decoder*.c) both need it, written down once: QEMU's
 * docs/interop/qcow2.txt is the text behind it.  Everything on disk is
 * big-endian.
 */
#ifndef QCOW2_H
#define QCOW2_H

#include <stdint.h>

#define QCOW2_MAGIC		0x514649fbu	/* "QFI\xfb" */

/* Cluster sizes QEMU opens: 512 B to 2 MiB. */
#define MIN_CLUSTER_BITS	9
#define MAX_CLUSTER_BITS	21
#define DEFAULT_CLUSTER_BITS	16		/* 64 KiB, as qemu-img's */
#define MIN_SUBCLUSTER_BITS	14		/* extended L2 entries: 16 KiB on */

/* Header fields: their byte offsets in cluster 0. */
#define HDR_MAGIC		0		/* u32 */
#define HDR_VERSION		4		/* u32: 2 or 3 */
#define HDR_BACKING_OFFSET	8		/* u64: the backing file's name */
#define HDR_BACKING_SIZE	16		/* u32: its length */
#define HDR_CLUSTER_BITS	20		/* u32 */
#define HDR_SIZE		24		/* u64: the virtual size */
#define HDR_CRYPT_METHOD	32		/* u32 */
#define HDR_L1_SIZE		36		/* u32: entries */
#define HDR_L1_OFFSET		40		/* u64 */
#define HDR_REFCOUNT_TABLE	48		/* u64: its offset */
#define HDR_REFCOUNT_CLUSTERS	56		/* u32 */
#define HDR_SNAPSHOTS		60		/* u32 */
#define HDR_SNAPSHOTS_OFFSET	64		/* u64 */
#define HDR_INCOMPATIBLE	72		/* u64, version 3 on */
#define HDR_COMPATIBLE		80		/* u64 */
#define HDR_AUTOCLEAR		88		/* u64 */
#define HDR_REFCOUNT_ORDER	96		/* u32 */
#define HDR_LENGTH		100		/* u32 */
#define HDR_COMPRESSION_TYPE	104		/* u8, if the length says so */
#define COMPRESSION_DEFLATE	0
#define COMPRESSION_ZSTD	1

#define V2_HEADER_LENGTH	72
#define V3_HEADER_LENGTH	104

/* Incompatible feature bits. */
#define INCOMPAT_DIRTY		(UINT64_C(1) << 0)
#define INCOMPAT_CORRUPT	(UINT64_C(1) << 1)
#define INCOMPAT_DATA_FILE	(UINT64_C(1) << 2)
#define INCOMPAT_COMPRESSION	(UINT64_C(1) << 3)	/* the compression type byte */
#define INCOMPAT_EXTENDED_L2	(UINT64_C(1) << 4)
#define INCOMPAT_KNOWN		UINT64_C(0x1f)

/* Header extensions: u32 type, u32 length, data padded to 8. */
#define EXT_HEADER		8
#define EXT_END			0x00000000u
#define EXT_BACKING_FORMAT	0xe2792acau
#define EXT_FEATURE_NAMES	0x6803f857u
#define EXT_DATA_FILE		0x44415441u

/* QEMU's limits. */
#define MAX_L1_BYTES		(UINT64_C(32) << 20)
#define MAX_REFCOUNT_TABLE_BYTES (UINT64_C(8) << 20)
#define MAX_REFCOUNT_ORDER	6
#define MAX_BACKING_NAME	1023
#define MAX_BACKING_FORMAT	15		/* QEMU reads it into 16 bytes */
#define MAX_HOST_OFFSET		(UINT64_C(1) << 56)	/* offsets have bits 9-55 */

/* L1 and L2 entries. */
#define ENTRY_OFFSET_MASK	UINT64_C(0x00fffffffffffe00)	/* bits 9-55 */
#define ENTRY_COPIED		(UINT64_C(1) << 63)	/* refcount exactly 1 */
#define ENTRY_COMPRESSED	(UINT64_C(1) << 62)	/* of an L2 entry */
#define ENTRY_ZERO		UINT64_C(1)		/* an L2 entry reads as zeros */
#define L1_RESERVED		UINT64_C(0x7f000000000001ff)	/* bits 0-8, 56-62 */
#define L2_RESERVED		UINT64_C(0x3f000000000001fe)	/* bits 1-8, 56-61 */
#define REFTABLE_RESERVED	UINT64_C(0x1ff)			/* bits 0-8 */

/* Extended L2 entries: 32 subclusters, allocated and zero bitmaps. */
#define L2_SUBCLUSTERS		32
#define SUB_ALLOCATED		UINT64_C(0xffffffff)

/* Refcounts as sqcow2 writes them: 16 bits. */
#define REFCOUNT_ORDER		4

#endif

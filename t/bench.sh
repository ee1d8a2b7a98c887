#!/bin/sh
# t/bench.sh SQCOW2 FAULT_SO: time sqcow2 against cat and qemu-img convert
# on the same inputs, in turn, and print each row's medians and their
# ratio; then the rows again as the README's table, the peak RSS of each
# and the size of its images.  Each command's output is checked once per
# row; a command that fails or writes a wrong output drops its row and
# makes the exit status 1, a timing never does.  FAULT_SO (t/bin/fault.so)
# makes the kernel refuse a fast path, to time the fallback.
#
# BENCH_DIR (default /tmp/sqcow2-bench) keeps the inputs for later runs:
# about 11 GiB.  REPEAT (default 5) rounds of each row.  BENCH_QUICK=1
# checks the script rather than the program: a 32nd of the data (the
# sparse disks keep their size), in /tmp/sqcow2-bench-quick by default,
# and one round.  BENCH_ROWS names the groups of rows to run (default:
# stream file zeros slices xfs decode compressed linearity cold calls).
set -u
if [ $# != 2 ]; then
	echo "usage: sh t/bench.sh SQCOW2 FAULT_SO" >&2
	exit 2
fi
. "$(cd "$(dirname "$0")" && pwd)/bench-lib.sh" || exit 1
SQCOW2=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
fault_so=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
T_BIN=$(dirname "$fault_so")	# the codecs' own benches, when built
if [ "${BENCH_QUICK:-0}" = 1 ]; then
	mode=quick dir=${BENCH_DIR:-/tmp/sqcow2-bench-quick} REPEAT=${REPEAT:-1}
	unit_mib=32 unit=32M xfs_size=512M
else
	mode=full dir=${BENCH_DIR:-/tmp/sqcow2-bench} REPEAT=${REPEAT:-5}
	unit_mib=1024 unit=1G xfs_size=3G
fi
case $REPEAT in
''|*[!0-9]*|0) echo "bench: REPEAT must be a whole number of rounds, 1 or more" >&2; exit 2 ;;
esac
mkdir -p "$dir" && cd "$dir" || exit 1
dir=$PWD
HAVE_QEMU=0
command -v qemu-img >/dev/null 2>&1 && HAVE_QEMU=1
HAVE_TIME=0
[ -x /usr/bin/time ] && HAVE_TIME=1
BENCH_STATE=$dir/.state
bench_init
trap 'mountpoint -q "$dir/xfs" && umount "$dir/xfs"; rm -f "$dir/xfs.img"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# random_at FILE MIB OFFSET_MIB: MIB MiB of random data at OFFSET_MIB of FILE.
random_at() {
	head -c "$2"M /dev/urandom |
		dd of="$1" bs=1M seek="$3" conv=notrunc status=none
}

# make_inputs: the disks, in units of 1 GiB (32 MiB when quick), made
# once for each mode and kept.
make_inputs() {
	if [ "$(cat inputs 2>/dev/null)" != $mode ]; then
		rm -f ./*.raw && echo $mode >inputs || exit 1
	fi
	half_piece=$((unit_mib / 16)) spread_piece=$((unit_mib / 4))
	if [ ! -f dense.raw ]; then
		echo "making dense.raw: $unit of random data"
		head -c $unit /dev/urandom >dense.raw
	fi
	if [ ! -f half.raw ]; then
		echo "making half.raw: $((2 * unit_mib)) MiB, $half_piece MiB of random data in every $((2 * half_piece))"
		truncate -s $((2 * unit_mib))M half.raw
		for i in $(seq 0 15); do
			random_at half.raw $half_piece $((i * 2 * half_piece))
		done
	fi
	if [ ! -f sparse.raw ]; then
		echo "making sparse.raw: 64 GiB, 4 MiB of random data"
		truncate -s 64G sparse.raw
		for gib in 0 20 40 63; do
			random_at sparse.raw 1 $((gib * 1024))
		done
	fi
	if [ ! -f dense4.raw ]; then
		echo "making dense4.raw: $((4 * unit_mib)) MiB of random data"
		head -c $((4 * unit_mib))M /dev/urandom >dense4.raw
	fi
	if [ ! -f spread.raw ]; then
		echo "making spread.raw: 64 GiB, 8 pieces of $spread_piece MiB of random data"
		truncate -s 64G spread.raw
		for gib in 1 9 17 25 33 41 49 57; do
			random_at spread.raw $spread_piece $((gib * 1024))
		done
	fi
	if [ ! -f zeros.raw ]; then
		echo "making zeros.raw: $unit, half random data, half written zeros"
		{ head -c $((unit_mib / 2))M /dev/urandom
		  head -c $((unit_mib / 2))M /dev/zero; } >zeros.raw
	fi
	"$SQCOW2" --map half.raw >half.ranges
}

# Through pipes, at the default cluster size and at 2M: the stream form
# against cat relaying the same bytes.
rows_stream() {
	for input in dense half; do
		size=$(stat -c %s $input.raw)
		ranges=
		[ $input = half ] && ranges=" -r half.ranges"
		for cluster in "" 2M; do
			pair "$input${cluster:+ $cluster}: stream, vs cat|cat|cat" "<= 0.6" \
				"cat $input.raw | sqcow2${cluster:+ -c $cluster} -s $size$ranges | cat" \
				"is_image $input.raw" \
				"cat $input.raw | cat | cat" "is_raw $input.raw"
		done
	done
	# What the stream rows can reach at best: sqcow2 splices, so the two
	# cats around it are left; nothing in the middle at all is this.
	pair "floor: cat|cat, vs cat|cat|cat" "the stream rows' floor" \
		"cat dense.raw | cat" "is_raw dense.raw" \
		"cat dense.raw | cat | cat" "is_raw dense.raw"
	pair "dense: stream, read/write fallback" "no splice; vs cat|cat|cat" \
		"cat dense.raw | FAULTS=refuse=splice LD_PRELOAD=$fault_so sqcow2 -s $(stat -c %s dense.raw) | cat" \
		"is_image dense.raw" \
		"cat dense.raw | cat | cat" "is_raw dense.raw"
}

# From a file to a file, the stream form on stdout and -o, against
# qemu-img convert at the same cluster size.
rows_file() {
	for input in dense half sparse zeros; do
		goal="<= 0.8"
		[ $input = sparse ] && goal="< 0.05 s"
		for cluster in "" 2M; do
			name=$input${cluster:+ $cluster}
			convert="qemu-img convert -f raw -O qcow2${cluster:+ -o cluster_size=$cluster} $input.raw out.qcow2"
			pair "$name: file, vs qemu-img" "$goal" \
				"sqcow2${cluster:+ -c $cluster} <$input.raw >out.qcow2" \
				"is_image $input.raw out.qcow2" \
				"$convert" "is_image $input.raw out.qcow2"
			pair "$name: -o, vs qemu-img" "$goal" \
				"sqcow2${cluster:+ -c $cluster} -o out.qcow2 <$input.raw" \
				"is_image $input.raw out.qcow2" \
				"$convert" "is_image $input.raw out.qcow2"
		done
	done
	pair "dense: file, read/write fallback" "no copy_file_range; vs qemu-img" \
		"FAULTS=refuse=copy_file_range LD_PRELOAD=$fault_so sqcow2 <dense.raw >out.qcow2" \
		"is_image dense.raw out.qcow2" \
		"qemu-img convert -f raw -O qcow2 dense.raw out.qcow2" "is_image dense.raw out.qcow2"
}

# What finding zeros costs, against the same program storing them.
rows_zeros() {
	pair "zeros: default, vs --no-sparsify" "scan, half not sent; to a pipe" \
		"sqcow2 <zeros.raw | cat" "is_image zeros.raw" \
		"sqcow2 --no-sparsify <zeros.raw | cat" "is_image zeros.raw"
	pair "zeros: -o, vs --no-sparsify file" "zero test as it copies, to a file" \
		"sqcow2 -o out.qcow2 <zeros.raw" "is_image zeros.raw out.qcow2" \
		"sqcow2 --no-sparsify <zeros.raw >out.qcow2" "is_image zeros.raw out.qcow2"
	pair "half: file, vs --no-sparsify" "scan of data with no zeros" \
		"sqcow2 <half.raw >out.qcow2" "is_image half.raw out.qcow2" \
		"sqcow2 --no-sparsify <half.raw >out.qcow2" "is_image half.raw out.qcow2"
}

# Slices made with --no-sparsify on both sides, as the README's example:
# four parts at once, and the last part of a large disk alone.
rows_slices() {
	step=$(( ($("$SQCOW2" --no-sparsify --print-size dense4.raw) + 3) / 4 ))
	parts=
	for i in 0 1 2 3; do
		parts="$parts sqcow2 --no-sparsify --slice $((i * step)):$((i * step + step)) dense4.raw >out.part$i &"
	done
	pair "dense4: 4 slices at once, vs whole" "< 1 (2 cores)" \
		"${parts# } wait" "is_parts dense4.raw out.part0 out.part1 out.part2 out.part3" \
		"sqcow2 --no-sparsify dense4.raw >out.qcow2" "is_image dense4.raw out.qcow2"
	start=$(( $("$SQCOW2" --no-sparsify --print-size spread.raw) - unit_mib * 1048576 ))
	pair "spread: last $unit slice, vs whole" "~ 0.5: its bytes" \
		"sqcow2 --no-sparsify --slice $start: spread.raw >out.slice" \
		"is_last_slice $start spread.raw out.slice" \
		"sqcow2 --no-sparsify spread.raw >out.qcow2" "is_image spread.raw out.qcow2"
}

# -o on a loop XFS with reflink, where one can be made.
rows_xfs() {
	if [ "$(id -u)" != 0 ] || [ $HAVE_QEMU = 0 ] || ! command -v mkfs.xfs >/dev/null 2>&1; then
		echo "reflink row skipped: needs root, mkfs.xfs and qemu-img for a loop XFS"
		return
	fi
	mkdir -p xfs && truncate -s $xfs_size xfs.img && mkfs.xfs -q -f -m reflink=1 xfs.img &&
		mount -o loop xfs.img xfs && cp dense.raw xfs/dense.raw && sync -f xfs
	if ! mountpoint -q xfs; then
		echo "reflink row skipped: no loop XFS could be mounted"
		rm -f xfs.img
		return
	fi
	pair "XFS: -o --no-sparsify, vs -C" "<= 1.5; neither reads" \
		"sqcow2 --no-sparsify -o xfs/out.qcow2 xfs/dense.raw" \
		"is_image xfs/dense.raw xfs/out.qcow2" \
		"qemu-img convert -C -f raw -O qcow2 xfs/dense.raw xfs/out.ref.qcow2" \
		"is_image xfs/dense.raw xfs/out.ref.qcow2"
	pair "XFS: -o, vs qemu-img -C" "reads each cluster for zeros" \
		"sqcow2 -o xfs/out.qcow2 xfs/dense.raw" "is_image xfs/dense.raw xfs/out.qcow2" \
		"qemu-img convert -C -f raw -O qcow2 xfs/dense.raw xfs/out.ref.qcow2" \
		"is_image xfs/dense.raw xfs/out.ref.qcow2"
	for how in --no-sparsify --sparsify; do
		rm -f xfs/out* && sync -f xfs
		before=$(df -k xfs | awk 'NR == 2 { print $3 }')
		"$SQCOW2" -o xfs/out.qcow2 $how xfs/dense.raw && sync -f xfs
		after=$(df -k xfs | awk 'NR == 2 { print $3 }')
		note "-o $how on reflink XFS: $((after - before)) KiB of new space for $unit of data (goal < 1024)"
	done
	umount xfs && rmdir xfs && rm -f xfs.img
}

# Images back to raw disks.
rows_decode() {
	"$SQCOW2" dense.raw >dense.qcow2 && cp dense.qcow2 dense-o.qcow2
	pair "dense: -d stream, vs cat|cat|cat" "<= 0.6" \
		"cat dense.qcow2 | sqcow2 -d | cat" "is_raw dense.raw" \
		"cat dense.qcow2 | cat | cat" "is_raw dense.qcow2"
	if [ $HAVE_QEMU = 1 ]; then
		pair "dense: -d file, vs qemu-img" "<= 0.8" \
			"sqcow2 -d dense.qcow2 >out.raw" "is_raw dense.raw out.raw" \
			"qemu-img convert -f qcow2 -O raw dense.qcow2 out.raw" "is_raw dense.raw out.raw"
		pair "dense: -d -o, vs qemu-img" "<= 0.8" \
			"sqcow2 -d -o out.raw dense.qcow2" "is_raw dense.raw out.raw" \
			"qemu-img convert -f qcow2 -O raw dense.qcow2 out.raw" "is_raw dense.raw out.raw"
		"$SQCOW2" sparse.raw >sparse.qcow2
		pair "sparse: -d pipe, vs qemu-img" "qemu-img from the file" \
			"cat sparse.qcow2 | sqcow2 -d >out.raw" "is_raw sparse.raw out.raw" \
			"qemu-img convert -f qcow2 -O raw sparse.qcow2 out.raw" "is_raw sparse.raw out.raw"
	fi
	rm -f dense.qcow2 dense-o.qcow2 sparse.qcow2
}

# A file system of real files (this machine's /usr, 70% full), made once
# and kept: what compressed images hold.
make_fs() {
	[ -f fs.raw ] && [ "$(stat -c %s fs.raw)" = $((unit_mib * 1048576)) ] && return
	echo "making fs.raw: an ext4 of $unit, 70% of it files from /usr"
	rm -rf fs.tree fs.raw && mkdir fs.tree &&
	find /usr -type f -size -8M -printf "%s %p\n" 2>/dev/null |
		awk -v max=$((unit_mib * 7 / 10 * 1048576)) \
			'{ n += $1; if (n > max) exit; print $2 }' >fs.files &&
	tar -cf - -T fs.files 2>/dev/null | tar -xf - -C fs.tree
	truncate -s $unit fs.raw && mkfs.ext4 -q -F -d fs.tree fs.raw
	rm -rf fs.tree fs.files
}

# Compressed images, as qemu-img convert -c makes them, back to raw disks:
# from a pipe, against qemu-img reading the same image from a file.
rows_compressed() {
	[ $HAVE_QEMU = 1 ] || return 0
	make_fs
	[ -f fs-c.qcow2 ] || qemu-img convert -f raw -O qcow2 -c fs.raw fs-c.qcow2
	pair "-c fs: -d from pipe, vs qemu-img" "<= 1.0" \
		"cat fs-c.qcow2 | sqcow2 -d >out.raw" "is_raw fs.raw out.raw" \
		"qemu-img convert -f qcow2 -O raw fs-c.qcow2 out.raw" "is_raw fs.raw out.raw"
	pair "-c fs: -d pipe|cat, vs qemu-img" "<= 1.0" \
		"cat fs-c.qcow2 | sqcow2 -d | cat >out.raw" "is_raw fs.raw out.raw" \
		"qemu-img convert -f qcow2 -O raw fs-c.qcow2 out.raw" "is_raw fs.raw out.raw"
	[ -f fs-z.qcow2 ] ||
		qemu-img convert -f raw -O qcow2 -c -o compression_type=zstd fs.raw fs-z.qcow2
	pair "zstd fs: -d from pipe, vs qemu-img" "<= 1.2" \
		"cat fs-z.qcow2 | sqcow2 -d >out.raw" "is_raw fs.raw out.raw" \
		"qemu-img convert -f qcow2 -O raw fs-z.qcow2 out.raw" "is_raw fs.raw out.raw"
	# -z: what qemu-img convert -c makes, to a file, and to a stream,
	# which compresses every cluster twice to know the size first.
	pair "-z fs: -o, vs qemu-img -c" "<= 1.0; size <= 1.02" \
		"sqcow2 -z -o out.qcow2 fs.raw" "is_image fs.raw out.qcow2" \
		"qemu-img convert -f raw -O qcow2 -c fs.raw out.ref.qcow2" \
		"is_image fs.raw out.ref.qcow2"
	pair "-z fs: stream, vs qemu-img -c" "two passes" \
		"sqcow2 -z fs.raw >out.qcow2" "is_image fs.raw out.qcow2" \
		"qemu-img convert -f raw -O qcow2 -c fs.raw out.ref.qcow2" \
		"is_image fs.raw out.ref.qcow2"
	if [ -x "$T_BIN/bench-deflate" ]; then
		"$T_BIN/bench-deflate" fs.raw >deflate.out 2>&1 &&
		note "deflate, one core, fs.raw's clusters: $(sed -n 's/^deflate_cluster *\([0-9.]* MB\/s\).*/\1/p' deflate.out) ours, $(sed -n 's/^zlib *\([0-9.]* MB\/s\).*/\1/p' deflate.out) zlib; $(sed -n 's/^ratio *//p' deflate.out)"
	fi
	if [ -x "$T_BIN/bench-zstd" ]; then
		"$T_BIN/bench-zstd" fs.raw >zstd.out 2>&1 &&
		note "zstd, one core, fs.raw's clusters: $(sed -n 's/^zstd_decode_cluster *//p' zstd.out) ours, $(sed -n 's/^libzstd as QEMU calls *//p' zstd.out) libzstd as QEMU calls it"
	fi
	if [ -x "$T_BIN/bench-inflate" ]; then
		"$T_BIN/bench-inflate" fs.raw >inflate.out 2>&1 &&
		note "inflate, one core, fs.raw's clusters: $(sed -n 's/^inflate_cluster *//p' inflate.out) ours, $(sed -n 's/^zlib *//p' inflate.out) zlib ($(sed -n 's/^ratio *//p' inflate.out)x)"
	fi
}

# Cost linear in the disk, on each file system that can be had here: a
# disk of half random data and half written zeros, of $unit and twice
# that, in DIR, the default (sparsified) against qemu-img.
rows_linear() {
	fs=$1 where=$2
	{ head -c $((unit_mib / 2))M /dev/urandom; head -c $((unit_mib / 2))M /dev/zero; } \
		>"$where/d1.raw" && cat "$where/d1.raw" "$where/d1.raw" >"$where/d2.raw" || return
	for n in 1 2; do
		pair "$fs $((n * unit_mib))M: file, vs qemu-img" "<= 1.0 on tmpfs" \
			"sqcow2 <$where/d$n.raw >$where/out.qcow2" "is_image $where/d$n.raw $where/out.qcow2" \
			"qemu-img convert -f raw -O qcow2 $where/d$n.raw $where/out.qcow2" \
			"is_image $where/d$n.raw $where/out.qcow2"
		eval "linear_$n=\$sq_seconds"
	done
	note "$fs: twice the disk took $(ratio "$linear_2" "$linear_1") times as long (goal <= 2.6)"
	rm -f "$where"/d1.raw "$where"/d2.raw "$where"/out.qcow2
}

# A file system of its own, on a loop device or in memory: TYPE is tmpfs,
# xfs or btrfs.  Sets fs_dir, or returns 1 with a note if none can be had.
mount_fs() {
	fs_dir=$dir/fs-$1
	mkdir -p "$fs_dir" || return 1
	if [ "$(id -u)" != 0 ]; then
		note "$1 rows skipped: mounting needs root"
		return 1
	fi
	case $1 in
	tmpfs) mount -t tmpfs -o size=$((6 * unit_mib))M tmpfs "$fs_dir" ;;
	*) # mkfs.xfs wants 300 MiB at least
		fs_mib=$((8 * unit_mib)); [ $fs_mib -ge 512 ] || fs_mib=512
		command -v mkfs.$1 >/dev/null 2>&1 && truncate -s ${fs_mib}M fs-$1.img &&
		mkfs.$1 -q -f fs-$1.img >/dev/null && mount -o loop fs-$1.img "$fs_dir" ;;
	esac 2>/dev/null || { note "$1 rows skipped: no $1 could be mounted"; return 1; }
}

unmount_fs() {
	umount "$fs_dir" && rmdir "$fs_dir" && rm -f "$dir/fs-$1.img"
}

rows_linearity() {
	[ $HAVE_QEMU = 1 ] || return
	rows_linear "$(df -T . | awk 'NR == 2 { print $2 }')" "$dir"
	for fs in tmpfs xfs btrfs; do
		if mount_fs $fs; then
			rows_linear $fs "$fs_dir"
			unmount_fs $fs
		fi
	done
}

# A cold page cache and a disk larger than memory: the commands run in a
# memory cgroup of a quarter of the disk (64 MiB at least), after the caches are dropped.
# Each cold run moves its shell there; the drop is not timed.
cold() {
	cold_start=$(date +%s%N)
	echo 0 >"$memcg/cgroup.procs" && sync && echo 3 >/proc/sys/vm/drop_caches || return
	echo $(( ($(date +%s%N) - cold_start) / 1000 )) >>"$BENCH_STATE/untimed"
}

rows_cold() {
	memory_mib=$((unit_mib / 4))
	[ $memory_mib -ge 64 ] || memory_mib=64	# qemu-img needs 25 MiB of its own
	memcg=/sys/fs/cgroup/memory/sqcow2-bench limit=limit_in_bytes
	[ -d /sys/fs/cgroup/memory ] || memcg=/sys/fs/cgroup/sqcow2-bench limit=max
	if [ "$(id -u)" != 0 ] || [ $HAVE_QEMU = 0 ] || ! mkdir -p "$memcg" 2>/dev/null ||
	    ! echo ${memory_mib}M >"$memcg/memory.$limit" 2>/dev/null; then
		note "cold rows skipped: they need root, qemu-img and a memory cgroup"
		return
	fi
	note "cold rows: caches dropped before each run, in ${memory_mib} MiB of memory for $unit of data"
	for how in "" " --no-sparsify" " -o out.qcow2"; do
		case $how in
		*-o*) command="cold && sqcow2$how dense.raw" ;;
		*) command="cold && sqcow2$how dense.raw >out.qcow2" ;;
		esac
		shown=${how% out.qcow2}
		goal="<= 1.0"
		[ -n "$shown" ] || goal="reads the disk twice"
		pair "cold:${shown:- default}, vs qemu-img" "$goal" \
			"$command" "is_image dense.raw out.qcow2" \
			"cold && qemu-img convert -f raw -O qcow2 dense.raw out.qcow2" \
			"is_image dense.raw out.qcow2"
	done
	rmdir "$memcg" 2>/dev/null
}

# calls ARGS...: how many times sqcow2 ARGS made each system call of its
# hot paths, a line that a regression shows in.
calls() {
	shown="sqcow2 $*"
	strace -f -c -o "$BENCH_STATE/strace" sh -c "exec \"\$0\" \"\$@\"" \
		"$SQCOW2" "$@" >/dev/null 2>&1 </dev/null
	counts=$(awk '$NF ~ /^(read|pread64|write|lseek|mmap|copy_file_range|splice|fallocate|ftruncate)$/ {
		printf "%s %s, ", $NF, $4 }' "$BENCH_STATE/strace")
	note "$(printf '%-46s %s' "$shown:" "${counts%, }")"
}

rows_calls() {
	if ! command -v strace >/dev/null 2>&1; then
		note "strace not found: no counts of system calls"
		return
	fi
	"$SQCOW2" zeros.raw >calls.qcow2
	note "system calls of the hot paths, for $unit of half data, half written zeros:"
	calls zeros.raw -o out.qcow2
	calls --no-sparsify zeros.raw -o out.qcow2
	calls zeros.raw
	calls --no-sparsify zeros.raw
	calls -d calls.qcow2 -o out.raw
	calls -d calls.qcow2
	rm -f calls.qcow2 out.qcow2 out.raw
}

make_inputs
echo
echo "sqcow2 bench ($mode), $(date -u +%Y-%m-%d), $(nproc) cores, $(uname -r), $(df -T . | awk 'NR == 2 { print $2 }') in $dir"
grep -m1 "model name" /proc/cpuinfo | sed "s/.*: //"
echo "inputs: dense $unit_mib MiB, half $((2 * unit_mib)) MiB with half its data, sparse 64 GiB with"
echo "  4 MiB, dense4 $((4 * unit_mib)) MiB, spread 64 GiB with $((2 * unit_mib)) MiB, zeros $unit_mib MiB half zeros"
echo "each row: one run of each command, whose output is checked, then $REPEAT rounds of"
echo "  both in turn, the first of a round alternating; median wall times, and sqcow2's"
echo "  over the reference's; qemu-img: qemu-img convert at the same cluster size"
[ $HAVE_TIME = 1 ] || echo "GNU time not found (Debian package time): no RSS figures"
[ $HAVE_QEMU = 1 ] || echo "qemu-img not found: rows against it skipped (Debian package qemu-utils)"
echo
printf '%-34s %11s %11s %7s   %s\n' case sqcow2 reference ratio goal
for rows in ${BENCH_ROWS:-stream file zeros slices xfs decode compressed linearity cold calls}; do
	[ $rows = file ] && [ $HAVE_QEMU = 0 ] && continue
	rows_$rows
done
print_tables
rm -f out*
exit $bench_failed

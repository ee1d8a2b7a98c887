#!/bin/sh
# t/bench.sh SQCOW2 FAULT_SO: time sqcow2 against cat and qemu-img convert
# on the same inputs in the same run, and print medians and their ratios;
# FAULT_SO (t/bin/fault.so) makes the kernel refuse a fast path, to time
# the fallback.  It never fails on a timing.  BENCH_DIR (default /tmp/sqcow2-bench) needs
# about 11 GiB free; REPEAT (default 5) runs of each measurement.
set -u
sqcow2=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
fault_so=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
dir=${BENCH_DIR:-/tmp/sqcow2-bench}
repeat=${REPEAT:-5}
mkdir -p "$dir" && cd "$dir" || exit 1
have_qemu=0
command -v qemu-img >/dev/null 2>&1 && have_qemu=1
have_time=0
[ -x /usr/bin/time ] && have_time=1

# Inputs, made once and kept for later runs.
if [ ! -f dense.raw ]; then
	echo "making dense.raw: 1 GiB of random data"
	head -c 1G /dev/urandom >dense.raw
fi
if [ ! -f half.raw ]; then
	echo "making half.raw: 2 GiB, 64 MiB of random data in every 128 MiB"
	truncate -s 2G half.raw
	i=0
	while [ $i -lt 16 ]; do
		head -c 64M /dev/urandom |
			dd of=half.raw bs=1M seek=$((i * 128)) conv=notrunc status=none
		i=$((i + 1))
	done
fi
if [ ! -f sparse.raw ]; then
	echo "making sparse.raw: 64 GiB, 4 MiB of data"
	truncate -s 64G sparse.raw
	for gib in 0 20 40 63; do
		head -c 1M /dev/urandom |
			dd of=sparse.raw bs=1M seek=$((gib * 1024)) conv=notrunc status=none
	done
fi
if [ ! -f dense4.raw ]; then
	echo "making dense4.raw: 4 GiB of random data"
	head -c 4G /dev/urandom >dense4.raw
fi
if [ ! -f spread.raw ]; then
	echo "making spread.raw: 64 GiB, 2 GiB of random data in 8 pieces"
	truncate -s 64G spread.raw
	for gib in 1 9 17 25 33 41 49 57; do
		head -c 256M /dev/urandom |
			dd of=spread.raw bs=1M seek=$((gib * 1024)) conv=notrunc status=none
	done
fi
if [ ! -f zeros.raw ]; then
	echo "making zeros.raw: 1 GiB, half random data, half written zeros"
	{ head -c 512M /dev/urandom; head -c 512M /dev/zero; } >zeros.raw
fi
"$sqcow2" --map half.raw >half.ranges

# timed COMMAND: run it once, print "SECONDS PEAK_RSS_KIB" (RSS of the
# largest process, or - without /usr/bin/time).
timed() {
	rm -f out.qcow2
	start=$(date +%s%N)
	if [ $have_time = 1 ]; then
		/usr/bin/time -f %M -o rss sh -c "$1" || echo "FAILED: $1" >&2
	else
		sh -c "$1" || echo "FAILED: $1" >&2
		echo - >rss
	fi
	end=$(date +%s%N)
	echo "$(( (end - start) / 1000 )) $(tail -n 1 rss)"
}

# median COMMAND: REPEAT runs after one to warm the cache; prints
# "SECONDS RSS" for the median time.
median() {
	timed "$1" >/dev/null
	i=0
	while [ $i -lt "$repeat" ]; do
		timed "$1"
		i=$((i + 1))
	done | sort -n | sed -n "$(( (repeat + 1) / 2 ))p" |
		awk '{ printf "%.3f %s\n", $1 / 1e6, $2 }'
}

seconds() { echo "$1" | cut -d" " -f1; }
rss() { echo "$1" | cut -d" " -f2; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }

row() {
	printf '%-34s %9s s %9s s %7s   %s\n' "$1" "$2" "$3" "$(ratio "$2" "$3")" "$4"
}

echo
echo "sqcow2 bench, $(date -u +%Y-%m-%d), $(nproc) cores, $(uname -r), $(df -T . | awk 'NR == 2 { print $2 }') in $dir"
echo "$(grep -m1 "model name" /proc/cpuinfo | sed "s/.*: //")"
echo "median of $repeat runs each; wall time"
echo
printf '%-34s %11s %11s %7s   %s\n' "case" "sqcow2" "reference" "ratio" "goal"

# 1. stream mode against cat relaying the same bytes
for input in dense half; do
	ranges=""
	[ $input = half ] && ranges="-r half.ranges"
	n=$(stat -c %s $input.raw)
	sq=$(median "cat $input.raw | $sqcow2 -s $n $ranges | cat >/dev/null")
	ref=$(median "cat $input.raw | cat | cat >/dev/null")
	row "$input: stream, vs cat|cat|cat" "$(seconds "$sq")" "$(seconds "$ref")" "<= 0.6"
	eval "stream_${input}_rss=\$(rss \"\$sq\")"
done
sq=$(median "cat dense.raw | FAULTS=refuse=splice LD_PRELOAD=$fault_so $sqcow2 -s 1G | cat >/dev/null")
ref=$(median "cat dense.raw | cat | cat >/dev/null")
row "dense: stream, read/write fallback" "$(seconds "$sq")" "$(seconds "$ref")" "(no splice)"

# 2. file mode against qemu-img convert
if [ $have_qemu = 1 ]; then
	for input in dense half sparse zeros; do
		sq=$(median "$sqcow2 <$input.raw >out.qcow2")
		sq_size=$(stat -c %s out.qcow2)
		sqo=$(median "$sqcow2 -o out.qcow2 <$input.raw")
		sqo_size=$(stat -c %s out.qcow2)
		ref=$(median "qemu-img convert -f raw -O qcow2 $input.raw out.qcow2")
		ref_size=$(stat -c %s out.qcow2)
		goal="<= 0.8"
		[ $input = sparse ] && goal="< 0.05 s"
		row "$input: file, vs qemu-img convert" "$(seconds "$sq")" "$(seconds "$ref")" "$goal"
		row "$input: -o FILE, vs qemu-img convert" "$(seconds "$sqo")" "$(seconds "$ref")" "$goal"
		eval "file_${input}_rss=\$(rss \"\$sq\") o_${input}_rss=\$(rss \"\$sqo\")"
		eval "qemu_${input}_rss=\$(rss \"\$ref\")"
		eval "size_${input}=\"$sq_size $sqo_size $ref_size\""
	done
	sq=$(median "FAULTS=refuse=copy_file_range LD_PRELOAD=$fault_so $sqcow2 <dense.raw >out.qcow2")
	ref=$(median "qemu-img convert -f raw -O qcow2 dense.raw out.qcow2")
	row "dense: file, read/write fallback" "$(seconds "$sq")" "$(seconds "$ref")" "(no copy_file_range)"
	sq=$(median "$sqcow2 <zeros.raw >out.qcow2")
	sqo=$(median "$sqcow2 -o out.qcow2 <zeros.raw")
	row "zeros: -o FILE (zero test) vs file" "$(seconds "$sqo")" "$(seconds "$sq")" "the cost of zero detection"
	for input in dense zeros; do
		sq=$(median "$sqcow2 --sparsify <$input.raw >out.qcow2")
		sparsify_size=$(stat -c %s out.qcow2)
		ref=$(median "qemu-img convert -f raw -O qcow2 $input.raw out.qcow2")
		row "$input: --sparsify, vs qemu-img convert" "$(seconds "$sq")" "$(seconds "$ref")" \
			"scan + write; $sparsify_size bytes, qemu-img $(stat -c %s out.qcow2)"
	done
	sq=$(median "$sqcow2 --sparsify <zeros.raw | cat >/dev/null")
	ref=$(median "$sqcow2 <zeros.raw | cat >/dev/null")
	row "zeros: --sparsify to a pipe, vs without" "$(seconds "$sq")" "$(seconds "$ref")" "the scan costs, half is not sent"
else
	echo "qemu-img not found: file mode comparisons skipped (apt-get install qemu-utils)"
fi

# 4. slices: four parts made at once, and a part of a large disk alone
size4=$("$sqcow2" --no-sparsify --print-size dense4.raw)
step=$(( (size4 + 3) / 4 ))
sq=$(median "seq 0 3 | xargs -P4 -I{} sh -c '$sqcow2 --no-sparsify --slice \$(({} * $step)):\$(({} * $step + $step)) dense4.raw >part{}'")
ref=$(median "$sqcow2 --no-sparsify dense4.raw >out.qcow2")
row "dense 4 GiB: 4 slices at once, vs whole" "$(seconds "$sq")" "$(seconds "$ref")" "< 1 (2 cores)"
rm -f part0 part1 part2 part3
sizes=$("$sqcow2" --no-sparsify --print-size spread.raw)
sq=$(median "$sqcow2 --no-sparsify --slice $((sizes - 1073741824)): spread.raw >out.qcow2")
ref=$(median "$sqcow2 --no-sparsify spread.raw >out.qcow2")
row "64 GiB, 2 GiB data: last 1 GiB slice" "$(seconds "$sq")" "$(seconds "$ref")" "~ 0.5: its bytes"

# 5. -o on XFS with reflink, where a loop XFS can be made (root)
if [ "$(id -u)" = 0 ] && [ $have_qemu = 1 ] && command -v mkfs.xfs >/dev/null 2>&1; then
	truncate -s 3G xfs.img && mkfs.xfs -q -f -m reflink=1 xfs.img && mkdir -p xfs &&
	mount -o loop xfs.img xfs && cp dense.raw xfs/dense.raw && sync
	if mountpoint -q xfs; then
		sq=$(median "$sqcow2 -o xfs/o.qcow2 xfs/dense.raw")
		ref=$(median "qemu-img convert -C -f raw -O qcow2 xfs/dense.raw xfs/c.qcow2")
		row "dense on reflink XFS: -o, vs convert -C" "$(seconds "$sq")" "$(seconds "$ref")" "<= 1.1"
		rm -f xfs/o.qcow2 xfs/c.qcow2 && sync
		before=$(df -k xfs | awk 'NR == 2 { print $3 }')
		"$sqcow2" -o xfs/o.qcow2 xfs/dense.raw && sync
		after=$(df -k xfs | awk 'NR == 2 { print $3 }')
		echo "  -o on reflink XFS: $((after - before)) KiB of new space for 1 GiB of data (goal < 1024)"
		umount xfs
	fi
	rm -f xfs.img
else
	echo "reflink row skipped: needs root, mkfs.xfs and qemu-img for a loop XFS"
fi

# 6. decoding: the image of the dense disk back to raw
"$sqcow2" dense.raw >dense.qcow2
sq=$(median "cat dense.qcow2 | $sqcow2 -d | cat >/dev/null")
ref=$(median "cat dense.qcow2 | cat | cat >/dev/null")
row "dense: -d stream, vs cat|cat|cat" "$(seconds "$sq")" "$(seconds "$ref")" "<= 0.6"
decode_rss=$(rss "$sq")
if [ $have_qemu = 1 ]; then
	sq=$(median "$sqcow2 -d dense.qcow2 >out.raw")
	ref=$(median "qemu-img convert -f qcow2 -O raw dense.qcow2 out.raw")
	row "dense: -d file, vs qemu-img convert" "$(seconds "$sq")" "$(seconds "$ref")" "<= 0.8"
	"$sqcow2" sparse.raw >sparse.qcow2
	sq=$(median "cat sparse.qcow2 | $sqcow2 -d >out.raw")
	ref=$(median "qemu-img convert -f qcow2 -O raw sparse.qcow2 out.raw")
	row "sparse 64 GiB: -d pipe to file" "$(seconds "$sq")" "$(seconds "$ref")" "qemu-img from the file"
	decode_sparse_rss=$(rss "$sq")
	rm -f out.raw sparse.qcow2
fi
rm -f dense.qcow2
echo "  -d peak RSS, KiB: ${decode_rss:--} (1 GiB dense, pipe), ${decode_sparse_rss:--} (64 GiB sparse)"

echo
echo "peak RSS, KiB (goal for sqcow2: <= 4096)"
printf '  %-8s %10s %10s %10s %10s\n' input "stream" "file" "-o FILE" "qemu-img"
for input in dense half sparse zeros; do
	eval "printf '  %-8s %10s %10s %10s %10s\n' $input \"\${stream_${input}_rss:--}\" \
		\"\${file_${input}_rss:--}\" \"\${o_${input}_rss:--}\" \"\${qemu_${input}_rss:--}\""
done
[ $have_time = 1 ] || echo "  (install GNU time, Debian package time, for RSS figures)"

if [ $have_qemu = 1 ]; then
	echo
	echo "output size, bytes (goal: sqcow2 / qemu-img <= 1.0)"
	printf '  %-8s %12s %12s %12s %8s %8s\n' input stream "-o FILE" qemu-img "ratio" "ratio -o"
	for input in dense half sparse zeros; do
		eval "set -- \$size_$input"
		printf '  %-8s %12s %12s %12s %8s %8s\n' $input "$1" "$2" "$3" \
			"$(ratio "$1" "$3")" "$(ratio "$2" "$3")"
	done
fi
rm -f out.qcow2 rss

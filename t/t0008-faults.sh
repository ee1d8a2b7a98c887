#!/bin/sh
# Hostile conditions: trickling and pausing producers, short counts and
# EINTR everywhere (through t/fault.c), failing reads and writes, signals,
# and sizes at their limits.
. "$(dirname "$0")/lib.sh"

FAULT_SO=${FAULT_SO:-$(dirname "$READBACK")/fault.so}
export FAULT_SO
# The sanitizers' runtime must come first, unless told not to mind.
ASAN_OPTIONS=verify_asan_link_order=0:${ASAN_OPTIONS:-}
export ASAN_OPTIONS

size=1234567
test_expect_success 'setup' '
	make_raw disk.raw $size && put_data disk.raw 1000 70000 && put_data disk.raw 600000 100 &&
	put_data disk.raw 1234000 567 &&
	printf "1000 70000\n600000 100\n1234000 567\n" >disk.ranges &&
	cat disk.raw | "$SQCOW2" -s $size -r disk.ranges >ref.qcow2
'

# faulty FAULTS COMMAND: run COMMAND with the fault library.
faulty() {
	faults=$1
	shift
	FAULTS=$faults LD_PRELOAD=$FAULT_SO "$@"
}

test_expect_success 'a producer that writes one byte at a time' '
	dd if=disk.raw bs=1 status=none | "$SQCOW2" -s $size -r disk.ranges >trickle.qcow2 &&
	cmp trickle.qcow2 ref.qcow2 && verify trickle.qcow2 disk.raw
'

test_expect_success 'a producer that pauses' '
	{ head -c 300000 disk.raw && sleep 0.3 && tail -c +300001 disk.raw | head -c 100 &&
	  sleep 0.3 && tail -c +300101 disk.raw; } |
		"$SQCOW2" -s $size -r disk.ranges >pause.qcow2 &&
	cmp pause.qcow2 ref.qcow2
'

for faults in short eintr "short eintr"; do
test_expect_success "$faults: every way data moves still writes the same image" '
	faulty "$faults" sh -c "cat disk.raw | \"\$SQCOW2\" -s $size -r disk.ranges | cat >p2p.qcow2" &&
	cmp p2p.qcow2 ref.qcow2 &&
	faulty "$faults" "$SQCOW2" -r disk.ranges <disk.raw >f2f.qcow2 && cmp f2f.qcow2 ref.qcow2 &&
	faulty "$faults" sh -c "\"\$SQCOW2\" -r disk.ranges <disk.raw | cat >f2p.qcow2" &&
	cmp f2p.qcow2 ref.qcow2 &&
	faulty "$faults refuse=splice,copy_file_range,seek_data,pipe_size,fallocate" \
		"$SQCOW2" -r disk.ranges <disk.raw >rw.qcow2 &&
	cmp rw.qcow2 ref.qcow2 &&
	faulty "$faults" "$SQCOW2" -o o.qcow2 <disk.raw && verify o.qcow2 disk.raw &&
	faulty "$faults" "$SQCOW2" -r disk.ranges -b ref.qcow2 <disk.raw >b.qcow2 &&
	"$READBACK" check b.qcow2
'
done

test_expect_success 'a read error on stdin' '
	test_fails_with 1 "sqcow2: stdin: Input/output error" \
		sh -c "cat disk.raw | FAULTS=eio=200000 LD_PRELOAD=\$FAULT_SO \"\$SQCOW2\" -s $size >out.qcow2" &&
	test_fails_with 1 "sqcow2: stdin: Input/output error" \
		sh -c "FAULTS=\"eio=200000 refuse=seek_data\" LD_PRELOAD=\$FAULT_SO \"\$SQCOW2\" <disk.raw >out.qcow2"
'

test_expect_success 'a disk that fills up mid-way, every way' '
	test_fails_with 1 "sqcow2: stdout: No space left on device" \
		sh -c "FAULTS=enospc=400000 LD_PRELOAD=\$FAULT_SO \"\$SQCOW2\" <disk.raw >full.qcow2" &&
	test_fails_with 1 "sqcow2: stdout: No space left on device" \
		sh -c "cat disk.raw | FAULTS=enospc=400000 LD_PRELOAD=\$FAULT_SO \"\$SQCOW2\" -s $size >full2.qcow2" &&
	test_fails_with 1 "sqcow2: o-full.qcow2: No space left on device" \
		sh -c "FAULTS=enospc=100000 LD_PRELOAD=\$FAULT_SO \"\$SQCOW2\" -o o-full.qcow2 <disk.raw" &&
	test ! -e o-full.qcow2 && test -z "$(ls | grep sqcow2-)"
'

test_expect_success 'stopped and continued again and again, it carries on' '
	make_raw long.raw 64M && put_data long.raw 0 64M &&
	mkfifo long.fifo && run_bg feeder feed long.raw 33554432 long.fifo &&
	run_bg pid "$SQCOW2" -s 64M <long.fifo >stopped.qcow2 &&
	wait_for test -e long.fifo.fed &&
	for i in $(seq 20); do
		kill -STOP $pid && kill -CONT $pid || exit 1
	done &&
	: >long.fifo.go && wait $pid && wait $feeder && verify stopped.qcow2 long.raw
'

test_expect_success 'options given bad values' '
	test_fails_with 2 - "$SQCOW2" --size <<-EOF &&
	sqcow2: option ${SQ}--size${SQ} needs a value
	EOF
	test_fails_with 2 - "$SQCOW2" -c <<-EOF &&
	sqcow2: option ${SQ}-c${SQ} needs a value
	EOF
	test_fails_with 2 - "$SQCOW2" -o <<-EOF &&
	sqcow2: option ${SQ}-o${SQ} needs a value
	EOF
	test_fails_with 2 - "$SQCOW2" -b <<-EOF &&
	sqcow2: option ${SQ}-b${SQ} needs a value
	EOF
	test_fails_with 2 - "$SQCOW2" -F <<-EOF &&
	sqcow2: option ${SQ}-F${SQ} needs a value
	EOF
	test_fails_with 2 - "$SQCOW2" --compat <<-EOF &&
	sqcow2: option ${SQ}--compat${SQ} needs a value
	EOF
	test_fails_with 2 - "$SQCOW2" -s 0x <<-EOF &&
	sqcow2: bad size ${SQ}0x${SQ}: a number of bytes, or with k, M, G, T, P or E for powers of 1024
	EOF
	test_fails_with 2 - "$SQCOW2" -s 1M -c -64k <<-EOF &&
	sqcow2: cluster size must be a power of two from 512 to 2M, not ${SQ}-64k${SQ}
	EOF
	test_fails_with 2 - \
		"$SQCOW2" -s 1M -c 0 <<-EOF &&
	sqcow2: cluster size must be a power of two from 512 to 2M, not ${SQ}0${SQ}
	EOF
	test_fails_with 1 "sqcow2: .: Is a directory" "$SQCOW2" -s 1M -r . &&
	test_fails_with 1 "sqcow2: nodir: No such file or directory" \
		sh -c "\"\$SQCOW2\" -o nodir/x.qcow2 <disk.raw" &&
	test_fails_with 1 "sqcow2: nope.raw: No such file or directory" "$SQCOW2" --map nope.raw &&
	test_fails_with 2 - "$SQCOW2" --map a b <<-EOF
	sqcow2: unexpected argument ${SQ}b${SQ}: one raw disk at most; the image goes to stdout, or to -o FILE
	EOF
'

# The largest virtual size QEMU opens for each cluster size has an L1
# table of exactly 32 MiB.  A tmpfs holds sparse files of any of them;
# ext4 stops at 16 TiB, which covers up to 4k clusters.
bits=9
mkdir huge && mount -t tmpfs -o size=256m tmpfs huge 2>/dev/null && mounted=1 || mounted=0
trap 'if [ $mounted = 1 ]; then umount "$TRASH/huge"; fi; rm -rf "$TRASH"' EXIT
for cs in 512 1k 2k 4k 8k 16k 32k 64k 128k 256k 512k 1M 2M; do
	largest=$(( (1 << (2 * bits - 3)) * 4194304 ))
	if [ $mounted = 1 ]; then where=huge; elif [ $bits -le 12 ]; then where=.; else where=; fi
	if [ -n "$where" ]; then
	test_expect_success "-c $cs: the largest size, $largest bytes, and one byte more" '
		make_raw $where/max.raw $largest && put_data $where/max.raw 0 1000 &&
		put_data $where/max.raw $((largest - 1000)) 1000 &&
		printf "0 1000\n$((largest - 1000)) 1000\n" >max.ranges &&
		"$SQCOW2" -c $cs -r max.ranges <$where/max.raw >$where/max.qcow2 &&
		"$READBACK" compare $where/max.qcow2 $where/max.raw &&
		test_eq "$(info $where/max.qcow2 l1_size)" 4194304 &&
		{ [ "$HAVE_QEMU" = 0 ] || qemu-img check -q $where/max.qcow2; } &&
		rm -f $where/max.qcow2 &&
		test_expect_code 1 "$SQCOW2" -s $((largest + 1)) -c $cs -r max.ranges \
			--print-size 2>err &&
		grep -q "^sqcow2: virtual size too large for this cluster size (L1 table over 32 MiB): " err &&
		rm -f $where/max.raw
	'
	else
		test_skip_missing "-c $cs: the largest size, $largest bytes" "no tmpfs for a sparse file past 16 TiB"
	fi
	bits=$((bits + 1))
done

# In reverse order, so that the sort has all of its work to do.
test_expect_success 'a million ranges: time and memory' '
	awk "BEGIN { for (i = 999999; i >= 0; i--) print i * 1024, 100 }" >million.ranges &&
	make_raw million.raw 1024000000 &&
	start=$(date +%s%N) &&
	"$SQCOW2" -v -c 512 --no-sparsify -r million.ranges <million.raw >/dev/null 2>stats &&
	end=$(date +%s%N) &&
	kib=$(sed -n "s/.*peak memory \\([0-9]*\\) KiB/\\1/p" stats) &&
	echo "# a million ranges: $(( (end - start) / 1000000 )) ms, peak memory $kib KiB" >note &&
	grep -q "image: 1000000 data clusters" stats &&
	# 16 MiB of ranges and the 3 MiB any run may take (README): no copy
	# of the array for the sort.  ASan keeps freed arrays in quarantine,
	# and memcheck counts its own memory too.
	limit=19456 &&
	{ [ "${VARIANT:-}" != asan ] || limit=131072; } &&
	{ [ "${VARIANT:-}" = valgrind ] || test "$kib" -lt $limit; }
'
cat note 2>/dev/null

test_expect_success 'stdin not at its start: the disk is still the whole file' '
	sh -c "dd bs=4096 count=1 of=/dev/null status=none; exec \"\$SQCOW2\" -r disk.ranges >moved.qcow2" <disk.raw &&
	cmp moved.qcow2 ref.qcow2 &&
	sh -c "dd bs=4096 count=1 of=/dev/null status=none; exec \"\$SQCOW2\" -r disk.ranges -o moved-o.qcow2" <disk.raw &&
	verify moved-o.qcow2 disk.raw
'

test_expect_success '--input with stdin closed' '
	"$SQCOW2" -i disk.raw -r disk.ranges <&- >closed.qcow2 && cmp closed.qcow2 ref.qcow2
'

test_expect_success 'a value given to an option that takes none' '
	test_fails_with 2 - "$SQCOW2" --map=x <<-EOF &&
	sqcow2: option ${SQ}--map${SQ} takes no value
	EOF
	test_fails_with 2 - "$SQCOW2" --verbose=1 <<-EOF &&
	sqcow2: option ${SQ}--verbose${SQ} takes no value
	EOF
	test_fails_with 2 - "$SQCOW2" --bogus=1 <<-EOF
	sqcow2: unknown option ${SQ}--bogus=1${SQ}; try ${SQ}sqcow2 --help${SQ}
	EOF
'

if test -w /dev/full; then
test_expect_success '--help and --version to a full disk' '
	test_fails_with 1 "sqcow2: stdout: No space left on device" sh -c "\"\$SQCOW2\" --help >/dev/full" &&
	test_fails_with 1 "sqcow2: stdout: No space left on device" sh -c "\"\$SQCOW2\" -V >/dev/full"
'
else
	test_skip_missing '--help and --version to a full disk' '/dev/full is not writable here'
fi

test_done

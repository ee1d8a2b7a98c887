#!/bin/sh
# Every way data can move: splice, copy_file_range, SEEK_DATA and large
# pipes, and each of their read/write fallbacks, reached by making the
# kernel refuse the fast path (t/fault.c, as a file system or a kernel
# without it would), must write the same, valid image.
. "$(dirname "$0")/lib.sh"

FAULT_SO=${FAULT_SO:-$(dirname "$READBACK")/fault.so}
export FAULT_SO
# The sanitizers' runtime must come first, unless told not to mind.
ASAN_OPTIONS=verify_asan_link_order=0:${ASAN_OPTIONS:-}
export ASAN_OPTIONS

all_paths=splice,copy_file_range,seek_data,pipe_size,fallocate

size=5243393
test_expect_success 'setup' '
	make_raw disk.raw $size && put_data disk.raw 1000 200000 &&
	put_data disk.raw 2097000 3000 && put_data disk.raw 5243000 393 &&
	printf "1000 200000\n2097000 3000\n5243000 393\n" >disk.ranges
'

# each_way NAME COMMAND: run COMMAND (which writes $out, and runs sqcow2
# as env $faults "$SQCOW2") with every fast path on, then with each one
# refused, alone, with another errno, and all at once; all images must be
# the same and valid.
each_way() {
	for refused in "" splice copy_file_range seek_data pipe_size fallocate \
	    copy_file_range:EOPNOTSUPP copy_file_range:EINVAL copy_file_range:ENOSYS \
	    seek_data:EOPNOTSUPP fallocate:EINVAL $all_paths; do
		out=$1.$(echo "$refused" | tr ,: +-).qcow2 &&
		faults="FAULTS=refuse=$refused LD_PRELOAD=$FAULT_SO" &&
		{ eval "$2" || { echo "failed with $refused refused"; return 1; }; } &&
		{ verify "$out" disk.raw || { echo "with $refused refused"; return 1; }; } &&
		{ [ -z "$refused" ] || cmp "$1..qcow2" "$out"; } || return 1
	done
}

for cs in 512 64k 2M; do
test_expect_success "pipe to pipe, -c $cs" '
	each_way p2p$cs "cat disk.raw | env \$faults \"\$SQCOW2\" -c $cs -s $size -r disk.ranges | cat >\"\$out\""
'

test_expect_success "file to file, -c $cs" '
	each_way f2f$cs "env \$faults \"\$SQCOW2\" -c $cs -r disk.ranges <disk.raw >\"\$out\""
'

test_expect_success "file to pipe, -c $cs" '
	each_way f2p$cs "env \$faults \"\$SQCOW2\" -c $cs -r disk.ranges <disk.raw | cat >\"\$out\""
'

test_expect_success "pipe to file, -c $cs" '
	each_way p2f$cs "cat disk.raw | env \$faults \"\$SQCOW2\" -c $cs -s $size -r disk.ranges >\"\$out\""
'
done

test_expect_success 'a dense disk, every way' '
	make_raw dense.raw 3000000 && put_data dense.raw 0 3000000 &&
	cat dense.raw | "$SQCOW2" -s 3000000 >ref.qcow2 &&
	for refused in "" $all_paths; do
		FAULTS=refuse=$refused LD_PRELOAD=$FAULT_SO "$SQCOW2" <dense.raw >f.qcow2 &&
		cmp ref.qcow2 f.qcow2 &&
		cat dense.raw | FAULTS=refuse=$refused LD_PRELOAD=$FAULT_SO "$SQCOW2" -s 3000000 |
			cat >p.qcow2 &&
		cmp ref.qcow2 p.qcow2 || exit 1
	done
'

test_expect_success 'EAGAIN on every path, as from non-blocking descriptors' '
	for refused in "" $all_paths; do
		sh -c "cat disk.raw | FAULTS=\"eagain refuse=$refused\" LD_PRELOAD=\$FAULT_SO \
			\"\$SQCOW2\" -s $size -r disk.ranges | cat >e1.qcow2" &&
		FAULTS="eagain short refuse=$refused" LD_PRELOAD=$FAULT_SO \
			"$SQCOW2" -r disk.ranges <disk.raw >e2.qcow2 &&
		cmp e1.qcow2 p2p64k..qcow2 && cmp e2.qcow2 p2p64k..qcow2 || exit 1
	done
'

test_expect_success 'appending with >> or writing from an offset' '
	"$SQCOW2" <disk.raw >whole.qcow2 &&
	: >appended.qcow2 && "$SQCOW2" <disk.raw >>appended.qcow2 &&
	cmp appended.qcow2 whole.qcow2 &&
	echo prefix >prefixed && "$SQCOW2" <disk.raw >>prefixed &&
	tail -c +8 prefixed >tail.qcow2 && cmp tail.qcow2 whole.qcow2 &&
	{ echo prefix && "$SQCOW2" <disk.raw; } >offset &&
	tail -c +8 offset >tail2.qcow2 && cmp tail2.qcow2 whole.qcow2
'

test_expect_success 'without SEEK_DATA a file on stdin is all data, and still right' '
	FAULTS=refuse=seek_data LD_PRELOAD=$FAULT_SO "$SQCOW2" -v --no-sparsify <disk.raw >all.qcow2 2>stats &&
	verify all.qcow2 disk.raw &&
	test_eq "$(info all.qcow2 data_clusters)" 81 &&
	grep -q "skipped 0 by seeking" stats
'

test_expect_success 'without SEEK_DATA, bytes outside the ranges are still checked' '
	cp disk.raw stale.raw && put_data stale.raw 3000000 1 &&
	test_fails_with 1 "sqcow2: non-zero byte at input offset 3000000, outside the ranges" \
		sh -c "FAULTS=refuse=seek_data LD_PRELOAD=\$FAULT_SO \"\$SQCOW2\" -r disk.ranges <stale.raw >out.qcow2"
'

if command -v strace >/dev/null 2>&1; then
# calls SYSCALL COMMAND...: how many times COMMAND made SYSCALL.
calls() {
	syscall=$1
	shift
	ASAN_OPTIONS=detect_leaks=0 strace -f -c -e trace="$syscall" -o trace "$@" >/dev/null 2>&1
	awk -v s="$syscall" '$NF == s { print $4 }' trace | grep . || echo 0
}

test_expect_success 'the fast paths are taken, and the fallbacks avoid them' '
	test "$(calls splice sh -c "cat disk.raw | \"\$SQCOW2\" -s $size -r disk.ranges | cat")" -gt 0 &&
	test_eq "$(calls splice sh -c "cat disk.raw | FAULTS=refuse=splice LD_PRELOAD=\$FAULT_SO \"\$SQCOW2\" -s $size -r disk.ranges | cat")" 0 &&
	test "$(calls copy_file_range sh -c "\"\$SQCOW2\" <disk.raw >cfr.qcow2")" -gt 0 &&
	test_eq "$(calls copy_file_range sh -c "FAULTS=refuse=copy_file_range LD_PRELOAD=\$FAULT_SO \"\$SQCOW2\" <disk.raw >cfr.qcow2")" 0
'

# The cost of a pass grows with the disk, never with its square: SEEK_DATA
# and SEEK_HOLE are asked once an extent (on tmpfs each scans to the end
# of the file), a file is looked at through a mapping, not read into a
# buffer and read again, and blocks are reserved a step at a time.
test_expect_success 'the hot paths make the calls they should, a count each' '
	make_raw dense.raw 64M && put_data dense.raw 0 67108864 &&
	make_raw small.raw 1M && put_data small.raw 0 1048576 &&
	ASAN_OPTIONS=detect_leaks=0 strace -f -o seeks "$SQCOW2" dense.raw >dense.qcow2 &&
	test "$(grep -c "SEEK_DATA\\|SEEK_HOLE" seeks)" -le 8 &&
	# Reads of the disk do not grow with it (the runtime reads a few files).
	small=$(calls read sh -c "\"\$SQCOW2\" small.raw >small.qcow2") &&
	test "$(calls read sh -c "\"\$SQCOW2\" dense.raw >dense.qcow2")" -le $((small + 4)) &&
	test "$(calls read sh -c "\"\$SQCOW2\" --no-sparsify -o o.qcow2 dense.raw")" -le \
		$((small + 4)) &&
	verify o.qcow2 dense.raw &&
	test "$(calls fallocate sh -c "\"\$SQCOW2\" -o o.qcow2 dense.raw")" -le 4 &&
	test "$(calls copy_file_range sh -c "\"\$SQCOW2\" -o o.qcow2 dense.raw")" -ge 1 &&
	verify o.qcow2 dense.raw
'
else
	test_skip_missing 'the fast paths are taken, and the fallbacks avoid them' 'strace not found'
	test_skip_missing 'the hot paths make the calls they should, a count each' 'strace not found'
fi

test_done

#!/bin/sh
# Every way data can move: splice, copy_file_range, SEEK_DATA and large
# pipes, and each of their read/write fallbacks (forced through the test
# hook SQCOW2_DISABLE), must write the same, valid image.
. "$(dirname "$0")/lib.sh"

size=5243393
make_raw disk.raw $size && put_data disk.raw 1000 200000 &&
put_data disk.raw 2097000 3000 && put_data disk.raw 5243000 393 &&
printf "1000 200000\n2097000 3000\n5243000 393\n" >disk.ranges

# each_way NAME COMMAND: run COMMAND (which writes $out) with every fast
# path on, then with each one disabled; all images must be the same and valid.
each_way() {
	for off in "" splice copy_file_range seek_data pipe_size fallocate \
	    "splice copy_file_range seek_data pipe_size fallocate"; do
		out=$1.$(echo "$off" | tr " " +).qcow2
		SQCOW2_DISABLE=$off
		export SQCOW2_DISABLE
		eval "$2" || { echo "failed with SQCOW2_DISABLE='$off'"; return 1; }
		verify "$out" disk.raw || { echo "with SQCOW2_DISABLE='$off'"; return 1; }
		cmp "$1..qcow2" "$out" || return 1
	done
	unset SQCOW2_DISABLE
}

for cs in 512 64k 2M; do
test_expect_success "pipe to pipe, -c $cs" '
	each_way p2p$cs "cat disk.raw | \"\$SQCOW2\" -c $cs -s $size -r disk.ranges | cat >\"\$out\""
'

test_expect_success "file to file, -c $cs" '
	each_way f2f$cs "\"\$SQCOW2\" -c $cs -r disk.ranges <disk.raw >\"\$out\""
'

test_expect_success "file to pipe, -c $cs" '
	each_way f2p$cs "\"\$SQCOW2\" -c $cs -r disk.ranges <disk.raw | cat >\"\$out\""
'

test_expect_success "pipe to file, -c $cs" '
	each_way p2f$cs "cat disk.raw | \"\$SQCOW2\" -c $cs -s $size -r disk.ranges >\"\$out\""
'
done

test_expect_success 'a dense disk, every way' '
	make_raw dense.raw 3000000 && put_data dense.raw 0 3000000 &&
	cat dense.raw | "$SQCOW2" -s 3000000 >ref.qcow2 &&
	for off in "" "splice copy_file_range seek_data pipe_size fallocate"; do
		SQCOW2_DISABLE=$off "$SQCOW2" <dense.raw >f.qcow2 && cmp ref.qcow2 f.qcow2 &&
		cat dense.raw | SQCOW2_DISABLE=$off "$SQCOW2" -s 3000000 | cat >p.qcow2 &&
		cmp ref.qcow2 p.qcow2 || exit 1
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
	SQCOW2_DISABLE=seek_data "$SQCOW2" -v <disk.raw >all.qcow2 2>stats &&
	verify all.qcow2 disk.raw &&
	test_eq "$(info all.qcow2 data_clusters)" 81 &&
	grep -q "skipped 0 by seeking" stats
'

test_expect_success 'without SEEK_DATA, bytes outside the ranges are still checked' '
	cp disk.raw stale.raw && put_data stale.raw 3000000 1 &&
	test_fails_with 1 "sqcow2: non-zero byte at input offset 3000000, outside the ranges" \
		sh -c "SQCOW2_DISABLE=seek_data \"\$SQCOW2\" -r disk.ranges <stale.raw >out.qcow2"
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
	test_eq "$(calls splice sh -c "cat disk.raw | SQCOW2_DISABLE=splice \"\$SQCOW2\" -s $size -r disk.ranges | cat")" 0 &&
	test "$(calls copy_file_range sh -c "\"\$SQCOW2\" <disk.raw >cfr.qcow2")" -gt 0 &&
	test_eq "$(calls copy_file_range sh -c "SQCOW2_DISABLE=copy_file_range \"\$SQCOW2\" <disk.raw >cfr.qcow2")" 0
'
else
	test_skip 'the fast paths are taken, and the fallbacks avoid them' 'strace not found'
fi

test_done

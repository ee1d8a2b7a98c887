#!/bin/sh
# sqcow2 -d: a qcow2 image, from a pipe or a file, back to the raw disk;
# qemu-img convert -O raw of the same image is the oracle.
. "$(dirname "$0")/lib.sh"

# raw_of IMAGE RAW: the disk as qemu-img reads it, or as our own reader
# does without qemu-img.
raw_of() {
	if [ "$HAVE_QEMU" = 1 ]; then
		qemu-img convert -f qcow2 -O raw "$1" "$2"
	else
		"$READBACK" dump "$1" >"$2"
	fi
}

# decodes_as_oracle IMAGE: from a pipe and from a file, -d gives the disk.
decodes_as_oracle() {
	raw_of "$1" "$1.want" &&
	cat "$1" | "$SQCOW2" -d | cmp - "$1.want" &&
	"$SQCOW2" -d "$1" >"$1.out" && cmp "$1.out" "$1.want" &&
	test_eq "$("$SQCOW2" -d --print-size "$1")" "$(file_size "$1.want")"
}

test_expect_success 'setup' '
	make_raw disk.raw 20000256 && put_data disk.raw 0 70000 &&
	put_data disk.raw 5000000 1000 && put_data disk.raw 19999256 1000 &&
	head -c 3M /dev/zero | dd of=disk.raw bs=1M seek=8 conv=notrunc status=none &&
	put_data disk.raw 12000000 2000000
'

test_expect_success 'round trip through two pipes, each form and cluster size' '
	for cs in 512 4k 64k 2M; do
		cat disk.raw | "$SQCOW2" -s 20000256 -c $cs | "$SQCOW2" -d >rt.raw &&
		cmp rt.raw disk.raw &&
		"$SQCOW2" -c $cs --sparsify disk.raw | "$SQCOW2" -d | cmp - disk.raw &&
		"$SQCOW2" -c $cs --compat 0.10 disk.raw | "$SQCOW2" -d | cmp - disk.raw &&
		"$SQCOW2" -c $cs -o o.qcow2 disk.raw && "$SQCOW2" -d o.qcow2 | cmp - disk.raw ||
			{ echo "cluster size $cs"; exit 1; }
	done
'

test_expect_success 'sizes not a multiple of 512 come back padded to 512, as QEMU reads them' '
	for size in 1 511 513 65537 1000000; do
		make_raw odd.raw $size && put_data odd.raw $((size - 1)) 1 &&
		"$SQCOW2" odd.raw | "$SQCOW2" -d >odd.out &&
		test_eq "$(file_size odd.out)" $(( (size + 511) / 512 * 512 )) &&
		cmp -n $size odd.out odd.raw &&
		test -z "$(tail -c +$((size + 1)) odd.out | tr -d "\\0")" || exit 1
	done &&
	: >empty.raw && "$SQCOW2" empty.raw | "$SQCOW2" -d >empty.out &&
	test_eq "$(file_size empty.out)" 0
'

test_expect_success 'a file on stdout is sparse and exactly sized; -o writes a temporary file' '
	make_raw sparse.raw 1G && put_data sparse.raw 1000000000 65536 &&
	"$SQCOW2" sparse.raw >sparse.qcow2 &&
	"$SQCOW2" -d <sparse.qcow2 >sparse.out &&
	test_eq "$(file_size sparse.out)" 1073741824 &&
	test "$(du -k sparse.out | cut -f1)" -lt 1024 &&
	cmp sparse.out sparse.raw &&
	cat sparse.qcow2 | "$SQCOW2" -d -o o.raw && cmp o.raw sparse.raw &&
	test "$(du -k o.raw | cut -f1)" -lt 1024 &&
	test -z "$(ls -A | grep sqcow2-)"
'

test_expect_success 'over a file that held more, the disk and nothing else' '
	head -c 5M /dev/urandom >old.raw &&
	"$SQCOW2" -d sparse.qcow2 1<>old.raw &&
	test_eq "$(file_size old.raw)" 1073741824 && cmp old.raw sparse.raw
'

test_expect_success '--map gives ranges that make the same image again' '
	"$SQCOW2" disk.raw >first.qcow2 &&
	"$SQCOW2" -d --map <first.qcow2 >first.ranges &&
	head -n 1 first.ranges | grep -q "^# data ranges of stdin, 20000256 bytes" &&
	cat disk.raw | "$SQCOW2" -s 20000256 -r first.ranges >again.qcow2 &&
	cmp first.qcow2 again.qcow2 &&
	cat first.qcow2 | "$SQCOW2" -d --map >piped.ranges &&
	test_cmp first.ranges piped.ranges
'

if [ "$HAVE_QEMU" = 1 ]; then
test_expect_success 'images of qemu-img convert, from a pipe, each compat and cluster size' '
	for compat in 0.10 1.1; do
		for cs in 512 4k 64k 2M; do
			qemu-img convert -f raw -O qcow2 -o compat=$compat,cluster_size=$cs \
				disk.raw q.qcow2 &&
			decodes_as_oracle q.qcow2 || { echo "compat $compat, -c $cs"; exit 1; }
		done || exit 1
	done
'

test_expect_success 'random writes and zero clusters: a pipe reorders them in its window' '
	qemu-img create -q -f qcow2 rnd.qcow2 16M &&
	qemu-io -c "write -P 0x11 12M 64k" -c "write -P 0x22 1M 64k" \
		-c "write -z 12M 32k" -c "write -P 0x33 15M 4k" rnd.qcow2 >/dev/null &&
	raw_of rnd.qcow2 rnd.want &&
	"$SQCOW2" -d rnd.qcow2 | cmp - rnd.want &&
	cat rnd.qcow2 | "$SQCOW2" -d | cmp - rnd.want &&
	cat rnd.qcow2 | test_expect_code 1 "$SQCOW2" -d -w 32k >/dev/null 2>err &&
	grep -q "^sqcow2: stdin: image offset .*: the reorder window (32768 bytes) is full.*raise the window with -w" err
'

test_expect_success 'compressed clusters decode; refused: encrypted, a backing file, an external data file' '
	yes sqcow2 | head -c 1M >text.raw &&
	qemu-img convert -c -f raw -O qcow2 text.raw comp.qcow2 &&
	"$SQCOW2" -d comp.qcow2 | cmp - text.raw &&
	cat comp.qcow2 | "$SQCOW2" -d | cmp - text.raw &&
	qemu-img convert -c -f raw -O qcow2 -o compression_type=zstd text.raw zstd.qcow2 &&
	cat zstd.qcow2 | "$SQCOW2" -d | cmp - text.raw &&
	make_luks luks.qcow2 &&
	test_expect_code 1 "$SQCOW2" -d luks.qcow2 >/dev/null 2>err && grep -qi "encrypt" err &&
	qemu-img create -q -f qcow2 -b first.qcow2 -F qcow2 over.qcow2 &&
	test_expect_code 1 "$SQCOW2" -d over.qcow2 >/dev/null 2>err &&
	grep -q "first.qcow2" err &&
	qemu-img create -q -f qcow2 -o data_file=ext.raw ext.qcow2 1M &&
	test_expect_code 1 "$SQCOW2" -d ext.qcow2 >/dev/null 2>err && grep -qi "data file" err
'
else
	test_skip_missing 'images of qemu-img convert, from a pipe' 'qemu-img not found'
	test_skip_missing 'random writes and zero clusters' 'qemu-img not found'
	test_skip_missing 'compressed clusters; refused: encrypted, a backing file, an external data file' 'qemu-img not found'
fi

test_expect_success 'a stream that ends early names the offset reached, and exits 1' '
	"$SQCOW2" disk.raw >whole.qcow2 &&
	head -c 500000 whole.qcow2 >short.qcow2 &&
	cat short.qcow2 | test_expect_code 1 "$SQCOW2" -d >short.out 2>err &&
	grep -q "^sqcow2: stdin: .*500000" err &&
	test_expect_code 1 "$SQCOW2" -d short.qcow2 >/dev/null 2>err &&
	grep -q "^sqcow2: short.qcow2: .*500000" err &&
	head -c 100 whole.qcow2 | test_expect_code 1 "$SQCOW2" -d >/dev/null 2>err &&
	grep -q "^sqcow2: stdin: truncated header" err
'

test_expect_success 'not an image: one line, exit 1' '
	test_fails_with 1 "sqcow2: disk.raw: not a qcow2 image" "$SQCOW2" -d disk.raw &&
	: >nothing && test_fails_with 1 "sqcow2: nothing: not a qcow2 image" \
		"$SQCOW2" -d nothing
'

test_expect_success 'options for making an image are refused with -d' '
	test_fails_with 2 "sqcow2: --size is for making an image, not for -d" \
		"$SQCOW2" -d -s 1M whole.qcow2 &&
	test_fails_with 2 "sqcow2: --ranges is for making an image, not for -d" \
		"$SQCOW2" -d -r x whole.qcow2 &&
	test_fails_with 2 "sqcow2: --sparsify is for making an image, not for -d" \
		"$SQCOW2" --sparsify -d whole.qcow2
'

test_expect_success 'a 64 GiB sparse disk: to a file in little time and memory' '
	make_raw huge.raw 64G && put_data huge.raw 0 1000 &&
	put_data huge.raw 40000000000 100000 && put_data huge.raw 68719476000 736 &&
	"$SQCOW2" huge.raw >huge.qcow2 &&
	cat huge.qcow2 | "$SQCOW2" -d -v >huge.out 2>stats &&
	test_eq "$(file_size huge.out)" 68719476736 &&
	test "$(du -k huge.out | cut -f1)" -lt 4096 &&
	for at in 0:65536 39999963136:196608 68719411200:65536; do
		cmp -n ${at#*:} -i ${at%:*} huge.out huge.raw || exit 1
	done &&
	kib=$(sed -n "s/.*peak memory \([0-9]*\) KiB/\1/p" stats) && echo "peak $kib KiB" &&
	test "$kib" -lt 65536
'

FAULT_SO=${FAULT_SO:-$(dirname "$READBACK")/fault.so}
ASAN_OPTIONS=verify_asan_link_order=0:${ASAN_OPTIONS:-}
export FAULT_SO ASAN_OPTIONS

test_expect_success 'every way data moves, each fast path refused, short counts, EINTR, EAGAIN' '
	"$SQCOW2" -c 4k disk.raw >ways.qcow2 &&
	for faults in "" "refuse=splice,copy_file_range,pipe_size" "short eintr" "eagain short"; do
		cat ways.qcow2 | FAULTS=$faults LD_PRELOAD=$FAULT_SO "$SQCOW2" -d | cat >p2p.raw &&
		cmp p2p.raw disk.raw &&
		FAULTS=$faults LD_PRELOAD=$FAULT_SO "$SQCOW2" -d <ways.qcow2 >f2f.raw &&
		cmp f2f.raw disk.raw &&
		FAULTS=$faults LD_PRELOAD=$FAULT_SO "$SQCOW2" -d <ways.qcow2 | cat >f2p.raw &&
		cmp f2p.raw disk.raw &&
		cat ways.qcow2 | FAULTS=$faults LD_PRELOAD=$FAULT_SO "$SQCOW2" -d >p2f.raw &&
		cmp p2f.raw disk.raw || { echo "with FAULTS=$faults"; exit 1; }
	done
'

test_expect_success 'a read error and a full disk are errors' '
	test_fails_with 1 "sqcow2: stdin: Input/output error" \
		sh -c "cat ways.qcow2 | FAULTS=eio=300000 LD_PRELOAD=\$FAULT_SO \"\$SQCOW2\" -d >/dev/null" &&
	test_fails_with 1 "sqcow2: stdout: No space left on device" \
		sh -c "FAULTS=enospc=100000 LD_PRELOAD=\$FAULT_SO \"\$SQCOW2\" -d <ways.qcow2 >full.raw"
'

if [ "$(id -u)" = 0 ] && loop=$(losetup -f --show sparse.raw 2>/dev/null); then
test_expect_success 'to a block device, the holes are zeroed, not left as they were' '
	test_when_finished "losetup -d $loop" &&
	head -c 1M /dev/urandom | dd of=$loop bs=1M seek=10 conv=notrunc status=none &&
	"$SQCOW2" -d sparse.qcow2 >$loop && cmp $loop sparse.raw
'
else
	test_skip_missing 'to a block device, the holes are zeroed, not left as they were' 'no loop device (needs root)'
fi

test_done

#!/bin/sh
# -o FILE: the seekable form, which drops clusters of zeros, written to a
# temporary file and renamed into place only when complete, in the stream
# order: its tables, a hole where the plan had room for more, its data.
. "$(dirname "$0")/lib.sh"

FAULT_SO=${FAULT_SO:-$(dirname "$READBACK")/fault.so}
MKIMAGE=$T_DIR/bin/mkimage
[ "$VARIANT" = asan ] && MKIMAGE=$T_DIR/bin/asan/mkimage
ASAN_OPTIONS=verify_asan_link_order=0:${ASAN_OPTIONS:-}
export FAULT_SO ASAN_OPTIONS

# 40 MiB: random data, then 8 MiB of written zeros, a lone byte, and
# random data in the last, partial cluster.
test_expect_success 'setup' '
	make_raw z.raw 41943000 && put_data z.raw 0 3000000 &&
	head -c 8M /dev/zero | dd of=z.raw bs=1M seek=4 conv=notrunc status=none &&
	put_data z.raw 20000000 1 && put_data z.raw 41942000 1000 &&
	printf "0 41943000\n" >all.ranges &&
	# The clusters of z.raw that hold a non-zero byte.
	printf "0 3000000\n20000000 1\n41942000 1000\n" >nonzero.ranges &&
	"$SQCOW2" --map z.raw >map.ranges
'

# no_leftovers: nothing but the files named is in the directory.
no_leftovers() {
	leftovers=$(ls -A | grep "sqcow2-" || true)
	[ -z "$leftovers" ] || { echo "left behind: $leftovers"; return 1; }
}

# has_temp: the temporary file of a run of -o here exists: it is under way.
has_temp() {
	ls -A | grep -q "^\.sqcow2-"
}

test_expect_success 'clusters of zeros inside the ranges are not stored' '
	cat z.raw | "$SQCOW2" -s 41943000 -r all.ranges -o z.qcow2 &&
	verify z.qcow2 z.raw &&
	cat z.raw | "$SQCOW2" -s 41943000 -r all.ranges >stream.qcow2 &&
	verify stream.qcow2 z.raw &&
	test "$(file_size z.qcow2)" -lt "$(file_size stream.qcow2)" &&
	test_eq "$(info z.qcow2 data_clusters)" $((46 + 1 + 1))
'

# The plan (all.ranges) has 641 data clusters in one L2 table, 5 clusters of
# metadata before them; 48 are kept, so the file is 5 + 48 clusters, no gap.
test_expect_success 'its size is the plan'"'"'s metadata and the non-zero clusters' '
	test_eq "$(file_size z.qcow2)" $(((5 + 48) * 65536)) &&
	"$MKIMAGE" -p all.ranges z.raw nonzero.ranges | cmp - z.qcow2
'

test_expect_success 'tables first, data in guest order: a pipe decodes it holding nothing' '
	test_eq "$(info z.qcow2 metadata_first)" 1 &&
	test_eq "$(info z.qcow2 guest_order)" 1 &&
	pipe_decodes z.qcow2 z.raw
'

test_expect_success 'no range list: a dense stream with zeros in it' '
	cat z.raw | "$SQCOW2" -s 41943000 -o dense.qcow2 &&
	verify dense.qcow2 z.raw &&
	cmp dense.qcow2 z.qcow2
'

test_expect_success 'no range list: a file on stdin, its holes skipped' '
	"$SQCOW2" -v -o file.qcow2 <z.raw 2>stats &&
	verify file.qcow2 z.raw && cmp file.qcow2 z.qcow2 &&
	grep -q "skipped [1-9]" stats
'

# At 512 B the plan has 40 MiB of L2 tables' room, the kept clusters need a
# few: a gap, which a pipe meets after the last table, a hole in the file.
test_expect_success 'every cluster size: the layout of the plan of its map, a gap if need be' '
	for cb in 512:9 4k:12 64k:16 2M:21; do
		cs=${cb%:*} bits=${cb#*:} &&
		"$SQCOW2" -c $cs -o z$cs.qcow2 <z.raw && verify z$cs.qcow2 z.raw &&
		"$MKIMAGE" -c $bits -p map.ranges z.raw nonzero.ranges | cmp - z$cs.qcow2 &&
		pipe_decodes z$cs.qcow2 z.raw || exit 1
	done &&
	test "$(file_size z512.qcow2)" -gt \
		"$("$SQCOW2" -c 512 -s 41943000 -r nonzero.ranges --print-size)" &&
	test "$(du -k z512.qcow2 | cut -f1)" -lt $(($(file_size z512.qcow2) / 1024))
'

test_expect_success 'a disk of zeros and an empty disk' '
	make_raw zeros.raw 5M && head -c 5M /dev/zero >zeros.raw &&
	"$SQCOW2" -o zeros.qcow2 <zeros.raw && verify zeros.qcow2 zeros.raw &&
	test_eq "$(info zeros.qcow2 data_clusters)" 0 &&
	: >empty.raw && "$SQCOW2" -o empty.qcow2 <empty.raw && verify empty.qcow2 empty.raw &&
	# No data: the stream form of nothing, ending inside its last
	# refcount block.
	for f in zeros empty; do
		"$SQCOW2" $f.raw | cmp - $f.qcow2 && pipe_decodes $f.qcow2 $f.raw || exit 1
	done
'

test_expect_success 'the image gets the mode a new file gets' '
	(umask 027 && "$SQCOW2" -o mode.qcow2 <z.raw) &&
	test_eq "$(stat -c %a mode.qcow2)" 640
'

# A regular file on stdout gets its header last: until the run succeeds it
# is no image, so a script that checks the file rather than the exit
# status is not fooled.
not_an_image() {
	if "$READBACK" check "$1" 2>/dev/null; then
		echo "$1 reads as an image"; return 1
	fi
	[ "$HAVE_QEMU" = 0 ] || qemu-img info "$1" | grep -q "^file format: raw$" ||
		{ echo "qemu-img opens $1 as an image"; return 1; }
}

# The run has read 20 MiB and waits for more when the signal comes: it has
# written most of them, whose first cluster must not be an image's.
test_expect_success 'an interrupted run to a redirected file leaves no image' '
	mkfifo intr.fifo && run_bg feeder feed z.raw 20971520 intr.fifo &&
	run_bg pid env --default-signal=INT "$SQCOW2" -s 41943000 <intr.fifo >intr.qcow2 &&
	wait_for test -e intr.fifo.fed && kill -INT $pid &&
	test_expect_code 130 wait $pid && kill $feeder &&
	test "$(file_size intr.qcow2)" -gt 10000000 && not_an_image intr.qcow2
'

test_expect_success 'a killed run (SIGKILL) to a redirected file leaves no image' '
	mkfifo killed.fifo && run_bg feeder feed z.raw 20971520 killed.fifo &&
	run_bg pid "$SQCOW2" -s 41943000 <killed.fifo >killed.qcow2 &&
	wait_for test -e killed.fifo.fed && kill -KILL $pid &&
	test_expect_code 137 wait $pid && kill $feeder &&
	test "$(file_size killed.qcow2)" -gt 10000000 && not_an_image killed.qcow2
'

test_expect_success 'a failed run (a stale range list) to a redirected file leaves no image' '
	printf "0 3000000\n" >stale.ranges &&
	test_fails_with 1 "sqcow2: non-zero byte at input offset 20000000, outside the ranges" \
		sh -c "\"\$SQCOW2\" -r stale.ranges <z.raw >stale.qcow2" &&
	test "$(file_size stale.qcow2)" -gt 0 && not_an_image stale.qcow2
'

test_expect_success 'a run that fails at the very end, at fsync, leaves no image' '
	test_fails_with 1 "sqcow2: stdout: Input/output error" \
		sh -c "FAULTS=refuse=fsync LD_PRELOAD=\$FAULT_SO \"\$SQCOW2\" --fsync <z.raw >late.qcow2" &&
	not_an_image late.qcow2
'

test_expect_success 'a run that succeeds writes the header, over a file that held an image' '
	cp stream.qcow2 reused.qcow2 &&
	"$SQCOW2" -r nonzero.ranges <z.raw 1<>reused.qcow2 &&
	verify reused.qcow2 z.raw
'

test_expect_success '-o - is standard output, in the stream form' '
	cat z.raw | "$SQCOW2" -s 41943000 -r all.ranges -o - >dash.qcow2 &&
	cmp dash.qcow2 stream.qcow2
'

# A regression here would, as root, rename an image over /dev/stdout:
# put the link back if so, so that the machine outlives the failure.
test_expect_success '-o /dev/stdout onto a redirected file writes the file, in place' '
	test -L /dev/stdout &&
	save_status status "$SQCOW2" -o /dev/stdout <z.raw >devout.qcow2 &&
	{ test -L /dev/stdout || { rm -f /dev/stdout && ln -s /proc/self/fd/1 /dev/stdout &&
		echo "/dev/stdout was replaced" && exit 1; }; } &&
	test_eq "$(cat status)" 0 && verify devout.qcow2 z.raw &&
	"$SQCOW2" <z.raw >plain-out.qcow2 && cmp devout.qcow2 plain-out.qcow2
'

test_expect_success '-o through a symlink to standard output: no rename over the link' '
	ln -s /proc/self/fd/1 to-stdout &&
	"$SQCOW2" -o to-stdout <z.raw >linked.qcow2 &&
	test -L to-stdout && verify linked.qcow2 z.raw && no_leftovers
'

test_expect_success '-o /dev/fd/N of another descriptor writes there in place' '
	"$SQCOW2" -o /dev/fd/3 <z.raw 3>fd3.qcow2 &&
	test -L /dev/fd && verify fd3.qcow2 z.raw
'

test_expect_success '-o over an existing file keeps its mode' '
	cp z.qcow2 private.qcow2 && chmod 600 private.qcow2 &&
	(umask 022 && "$SQCOW2" -o private.qcow2 <z.raw) &&
	test_eq "$(stat -c %a private.qcow2)" 600 &&
	cp z.qcow2 shared.qcow2 && chmod 664 shared.qcow2 &&
	(umask 077 && "$SQCOW2" -o shared.qcow2 <z.raw) &&
	test_eq "$(stat -c %a shared.qcow2)" 664 && verify shared.qcow2 z.raw
'

if [ "$(id -u)" = 0 ]; then
test_expect_success '-o over an existing file keeps its owner' '
	cp z.qcow2 owned.qcow2 && chown 1234:5678 owned.qcow2 &&
	"$SQCOW2" -o owned.qcow2 <z.raw &&
	test_eq "$(stat -c %u:%g owned.qcow2)" 1234:5678
'
else
	test_skip_missing '-o over an existing file keeps its owner' 'not root'
fi

test_expect_success '-o FILE with a name of 255 bytes' '
	name=$(printf "%0251d.img" 0) &&
	"$SQCOW2" -o "$name" <z.raw && verify "$name" z.raw && no_leftovers &&
	mkdir -p sub && "$SQCOW2" -o "sub/$name" <z.raw && cmp "sub/$name" "$name"
'

test_expect_success 'a range that ends in a hole, data after it: -o and --sparsify end' '
	make_raw h.raw 8M && echo hello | dd of=h.raw bs=1M seek=4 conv=notrunc status=none &&
	printf "0 1048576\n4194304 65536\n" >h.ranges &&
	timeout 20 "$SQCOW2" -r h.ranges -o h.qcow2 <h.raw && verify h.qcow2 h.raw &&
	timeout 20 "$SQCOW2" -r h.ranges --sparsify <h.raw >h2.qcow2 && verify h2.qcow2 h.raw
'

test_expect_success '-o naming the input through /dev: refused before the input is touched' '
	cp z.raw in.raw &&
	test_fails_with 1 "sqcow2: stdin: input file is output file" \
		sh -c "\"\$SQCOW2\" -o /dev/stdin <in.raw" &&
	cmp in.raw z.raw &&
	test_fails_with 1 "sqcow2: stdin: input file is output file" \
		sh -c "\"\$SQCOW2\" -o /proc/self/fd/0 <in.raw" &&
	cmp in.raw z.raw
'

test_expect_success 'other fatal signals leave no temporary file either' '
	for sig in USR1:138 USR2:140 ALRM:142 XCPU:152 VTALRM:154; do
		rm -f sig.fifo sig.fifo.fed && mkfifo sig.fifo &&
		run_bg feeder feed z.raw 5242880 sig.fifo &&
		run_bg pid "$SQCOW2" -s 41943000 -o sig.qcow2 <sig.fifo &&
		wait_for test -e sig.fifo.fed && has_temp && kill -${sig%:*} $pid &&
		test_expect_code ${sig#*:} wait $pid && kill $feeder &&
		test ! -e sig.qcow2 && no_leftovers || { echo "after SIG$sig"; exit 1; }
	done
'

test_expect_success 'over a longer file, the image and nothing of what it held' '
	head -c 50M /dev/urandom >longer.qcow2 &&
	"$SQCOW2" -r nonzero.ranges <z.raw 1<>longer.qcow2 &&
	test_eq "$(file_size longer.qcow2)" "$("$SQCOW2" -r nonzero.ranges --print-size <z.raw)" &&
	verify longer.qcow2 z.raw
'

test_expect_success '-o of a device writes the stream form in place' '
	"$SQCOW2" -o /dev/null <z.raw && test -c /dev/null
'

test_expect_success '--fsync succeeds and leaves the same image' '
	"$SQCOW2" --fsync -o sync.qcow2 <z.raw && cmp sync.qcow2 z.qcow2
'

if command -v strace >/dev/null 2>&1; then
test_expect_success '--fsync syncs the file before the rename and the directory after' '
	# LeakSanitizer cannot run under ptrace.
	ASAN_OPTIONS=detect_leaks=0 strace -f -e trace=fsync,rename -o trace "$SQCOW2" --fsync -o traced.qcow2 <z.raw &&
	grep -E "^[0-9]+ +(fsync|rename)" trace | sed -E "s/^[0-9]+ +//; s/\\(.*//" >calls &&
	printf "fsync\nrename\nfsync\n" >want && test_cmp want calls
'
else
	test_skip_missing '--fsync syncs the file before the rename and the directory after' 'strace not found'
fi

test_expect_success 'truncated input leaves no file and no temporary file' '
	head -c 1000000 z.raw >short.raw &&
	test_fails_with 1 "sqcow2: input ended at offset 1000000, before --size 41943000" \
		sh -c "cat short.raw | \"\$SQCOW2\" -s 41943000 -o short.qcow2" &&
	test ! -e short.qcow2 && no_leftovers
'

test_expect_success 'a failed run leaves an existing FILE as it was' '
	cp z.qcow2 keep.qcow2 && cp z.qcow2 keep.orig &&
	test_fails_with 1 "sqcow2: input ended at offset 1000000, before --size 41943000" \
		sh -c "cat short.raw | \"\$SQCOW2\" -s 41943000 -o keep.qcow2" &&
	cmp keep.qcow2 keep.orig && no_leftovers
'

test_expect_success 'SIGTERM mid-way leaves nothing behind' '
	mkfifo slow && run_bg feeder feed z.raw 5242880 slow &&
	run_bg pid "$SQCOW2" -s 41943000 -o term.qcow2 <slow &&
	wait_for test -e slow.fed && has_temp && kill -TERM $pid &&
	test_expect_code 143 wait $pid && kill $feeder &&
	test ! -e term.qcow2 && no_leftovers
'

if can_mount_tmpfs; then
test_expect_success 'a full file system (ENOSPC) leaves nothing behind' '
	mkdir full && mount -t tmpfs -o size=1m tmpfs full &&
	test_when_finished umount full &&
	test_fails_with 1 "sqcow2: full/z.qcow2: No space left on device" \
		sh -c "\"\$SQCOW2\" -o full/z.qcow2 <z.raw" &&
	test_fails_with 1 "sqcow2: stdout: No space left on device" \
		sh -c "\"\$SQCOW2\" <z.raw >full/stream.qcow2" &&
	rm full/stream.qcow2 && test_eq "$(ls -A full)" ""
'

test_expect_success 'a small file system with room for the image, not for the disk' '
	mkdir small && mount -t tmpfs -o size=8m tmpfs small &&
	test_when_finished umount small &&
	make_raw big.raw 64M && put_data big.raw 1000000 2000000 &&
	"$SQCOW2" -o small/big.qcow2 <big.raw && verify small/big.qcow2 big.raw
'
else
	test_skip_missing 'a full file system (ENOSPC) leaves nothing behind' \
		'cannot mount a tmpfs (needs root): ENOSPC is shown with /dev/full in t0002'
	test_skip_missing 'a small file system with room for the image, not for the disk' \
		'cannot mount a tmpfs (needs root)'
fi

test_expect_success 'past ulimit -f: an error, and nothing left behind' '
	make_raw lim.raw 8M && put_data lim.raw 0 8388608 &&
	test_fails_with 1 "sqcow2: lim.qcow2: File too large" \
		sh -c "ulimit -f 4096; \"\$SQCOW2\" -o lim.qcow2 <lim.raw" &&
	test ! -e lim.qcow2 && no_leftovers &&
	test_fails_with 1 "sqcow2: stdout: File too large" \
		sh -c "ulimit -f 4096; \"\$SQCOW2\" <lim.raw >lim2.qcow2" &&
	sh -c "ulimit -f 40960; \"\$SQCOW2\" -o lim3.qcow2 <lim.raw" && verify lim3.qcow2 lim.raw
'

test_expect_success 'a signal ignored, as under nohup, stays ignored' '
	mkfifo hup &&
	run_bg pid sh -c "trap \"\" HUP; exec \"\$SQCOW2\" -s 41943000 -o hup.qcow2 <hup" &&
	{ head -c 5M z.raw && wait_for has_temp && kill -HUP $pid &&
		tail -c +5242881 z.raw; } >hup &&
	wait $pid && verify hup.qcow2 z.raw && no_leftovers
'

test_expect_success 'holes inside the ranges are skipped, not read' '
	make_raw holes.raw 4G && put_data holes.raw 3000000000 100000 &&
	echo "0 4294967296" >holes.ranges &&
	"$SQCOW2" -v -r holes.ranges -o holes.qcow2 <holes.raw 2>stats &&
	verify holes.qcow2 holes.raw &&
	read=$(sed -n "s/^sqcow2: read \([0-9]*\) bytes.*/\1/p" stats) &&
	echo "read $read" && test "$read" -le $((4 << 20))
'

test_done

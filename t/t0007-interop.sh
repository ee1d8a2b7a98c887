#!/bin/sh
# --compat 0.10, overlays of a backing file (the incremental backup of
# changed-block tracking), and -p progress.
. "$(dirname "$0")/lib.sh"

# The console form of -p, where stderr is a terminal: t/fault.c says so.
FAULT_SO=${FAULT_SO:-$(dirname "$READBACK")/fault.so}
export ASAN_OPTIONS=verify_asan_link_order=0:${ASAN_OPTIONS:-}

test_expect_success 'setup' '
	make_raw v1.raw 100M && put_data v1.raw 10000000 20000000 && put_data v1.raw 99999000 1000
'

test_expect_success '--compat 0.10 writes a version 2 image' '
	for cs in 512 64k 2M; do
		"$SQCOW2" --compat 0.10 -c $cs <v1.raw >v2-$cs.qcow2 &&
		verify v2-$cs.qcow2 v1.raw &&
		test_eq "$(info v2-$cs.qcow2 version)" 2 &&
		"$SQCOW2" --compat 0.10 -c $cs -o v2o-$cs.qcow2 <v1.raw &&
		verify v2o-$cs.qcow2 v1.raw &&
		test_eq "$(info v2o-$cs.qcow2 version)" 2 || exit 1
	done
'

if [ "$HAVE_QEMU" = 1 ]; then
test_expect_success 'qemu-img info says compat 0.10, and 1.1 by default' '
	qemu-img info v2-64k.qcow2 | grep -q "compat: 0.10" &&
	"$SQCOW2" --compat 1.1 <v1.raw >v3.qcow2 &&
	qemu-img info v3.qcow2 | grep -q "compat: 1.1" &&
	"$SQCOW2" <v1.raw >default.qcow2 && cmp v3.qcow2 default.qcow2
'
else
	test_skip_missing 'qemu-img info says compat 0.10, and 1.1 by default' 'qemu-img not found'
fi

# Disk version 2: new data in one place, zeros written over data in
# another, new data in a hole, and a lone byte in the last cluster.
test_expect_success 'setup: the second disk and its changed ranges' '
	cp v1.raw v2.raw && put_data v2.raw 15000000 100000 &&
	head -c 70000 /dev/zero | dd of=v2.raw bs=1 seek=20000000 conv=notrunc status=none &&
	put_data v2.raw 90000000 5000 && put_data v2.raw 104857599 1 &&
	printf "15000000 100000\n20000000 70000\n90000000 5000\n104857599 1\n" >changed.ranges
'

test_expect_success 'a full image, then an overlay of the changed ranges' '
	"$SQCOW2" <v1.raw >base.qcow2 &&
	cat v2.raw | "$SQCOW2" -s 100M -r changed.ranges -b base.qcow2 -F qcow2 >overlay.qcow2 &&
	"$READBACK" check overlay.qcow2 &&
	test_eq "$(info overlay.qcow2 backing_file)" base.qcow2 &&
	test_eq "$(info overlay.qcow2 backing_format)" qcow2
'

test_expect_success 'the overlay stores only the changed clusters' '
	# 15000000+100000: clusters 228-230; 20000000+70000: 305-306;
	# 90000000+5000: 1373; the last byte: 1599.
	test_eq "$(info overlay.qcow2 data_clusters)" 7
'

if [ "$HAVE_QEMU" = 1 ]; then
test_expect_success 'the chain reads as the new disk' '
	qemu-img check -q overlay.qcow2 &&
	qemu-img compare -q overlay.qcow2 v2.raw &&
	! qemu-img compare -q base.qcow2 v2.raw
'
else
	test_skip_missing 'the chain reads as the new disk' 'qemu-img not found'
fi

test_expect_success 'bytes outside the ranges need not be zero over a backing file' '
	cat v2.raw | "$SQCOW2" -s 100M -r changed.ranges -b base.qcow2 >plain-b.qcow2 &&
	"$READBACK" check plain-b.qcow2 &&
	test_eq "$(info plain-b.qcow2 backing_format)" "" &&
	test_eq "$(info plain-b.qcow2 data_clusters)" 7
'

test_expect_success 'a seekable stdin is read only in the ranges' '
	"$SQCOW2" -v --no-sparsify -r changed.ranges -b base.qcow2 -F qcow2 <v2.raw >seek.qcow2 2>stats &&
	cmp seek.qcow2 overlay.qcow2 &&
	grep -q "^sqcow2: read $((7 * 65536)) bytes" stats
'

test_expect_success '-o over a backing file stores the changed clusters as the stream does' '
	"$SQCOW2" -r changed.ranges -b base.qcow2 -F qcow2 -o o-overlay.qcow2 <v2.raw &&
	verify_overlay o-overlay.qcow2 v2.raw &&
	test_eq "$(info o-overlay.qcow2 data_clusters)" 7
'

if [ "$HAVE_QEMU" = 1 ]; then
test_expect_success 'a version 2 overlay, a raw backing file, a chain of three' '
	"$SQCOW2" --compat 0.10 -r changed.ranges -b v1.raw -F raw <v2.raw >v2-overlay.qcow2 &&
	qemu-img info v2-overlay.qcow2 | grep -q "compat: 0.10" &&
	qemu-img check -q v2-overlay.qcow2 && qemu-img compare -q v2-overlay.qcow2 v2.raw &&
	cp v2.raw v3.raw && put_data v3.raw 50000000 3000 && echo "50000000 3000" >c3.ranges &&
	"$SQCOW2" -r c3.ranges -b overlay.qcow2 -F qcow2 <v3.raw >overlay3.qcow2 &&
	qemu-img check -q overlay3.qcow2 && qemu-img compare -q overlay3.qcow2 v3.raw
'
else
	test_skip_missing 'a version 2 overlay, a raw backing file, a chain of three' 'qemu-img not found'
fi

test_expect_success 'backing options that cannot work' '
	test_fails_with 2 "sqcow2: --backing needs --ranges, the blocks that changed, or --diff" \
		"$SQCOW2" -s 1M -b base.qcow2 &&
	test_fails_with 2 "sqcow2: --backing-format needs --backing" \
		"$SQCOW2" -s 1M -F qcow2 &&
	test_fails_with 2 - \
		"$SQCOW2" -s 1M --compat 2 <<-EOF &&
	sqcow2: --compat must be 1.1 or 0.10, not ${SQ}2${SQ}
	EOF
	long=$(printf "%01024d" 0) &&
	test_fails_with 2 "sqcow2: backing file name over 1023 bytes" \
		"$SQCOW2" -s 100M -r changed.ranges -b "$long" --print-size &&
	name401=$(printf "%0401d" 0) &&
	test_fails_with 2 "sqcow2: backing file name does not fit in the first cluster" \
		"$SQCOW2" -s 100M -r changed.ranges -c 512 -b "$name401" --print-size &&
	"$SQCOW2" -s 100M -r changed.ranges -c 1k -b "$name401" --print-size >/dev/null &&
	test_fails_with 2 "sqcow2: --backing-format ${SQ}0123456789abcdef${SQ} is no format QEMU opens (raw, qcow2, vmdk, ...)" \
		"$SQCOW2" -s 100M -r changed.ranges -b base.qcow2 -F 0123456789abcdef --print-size &&
	test_fails_with 2 "sqcow2: --backing-format ${SQ}qcow3${SQ} is no format QEMU opens (raw, qcow2, vmdk, ...)" \
		"$SQCOW2" -s 100M -r changed.ranges -b base.qcow2 -F qcow3 --print-size
'

test_expect_success '-o naming its own backing file is refused, the backing file untouched' '
	cp base.qcow2 prev.qcow2 &&
	test_fails_with 2 "sqcow2: -o prev.qcow2 is the backing file prev.qcow2" \
		"$SQCOW2" -r changed.ranges -b prev.qcow2 -F qcow2 -o prev.qcow2 v2.raw &&
	cmp prev.qcow2 base.qcow2 &&
	mkdir -p sub && cp base.qcow2 sub/prev.qcow2 &&
	test_fails_with 2 "sqcow2: -o sub/prev.qcow2 is the backing file prev.qcow2" \
		"$SQCOW2" -r changed.ranges -b prev.qcow2 -F qcow2 -o sub/prev.qcow2 v2.raw
'

# An image that is its own backing file sends qemu-img check into a loop.
test_expect_success 'an image that would be its own backing file, not there yet, or on stdout' '
	test_fails_with 2 "sqcow2: -o new.qcow2 is the backing file new.qcow2" \
		"$SQCOW2" -r changed.ranges -b new.qcow2 -F qcow2 -o new.qcow2 v2.raw &&
	test ! -e new.qcow2 &&
	test_fails_with 2 "sqcow2: -o sub/new.qcow2 is the backing file new.qcow2" \
		"$SQCOW2" -r changed.ranges -b new.qcow2 -F qcow2 -o sub/new.qcow2 v2.raw &&
	test_fails_with 2 "sqcow2: standard output is the backing file out.qcow2" \
		sh -c "\"\$SQCOW2\" -r changed.ranges -b out.qcow2 -F qcow2 v2.raw >out.qcow2" &&
	"$SQCOW2" -r changed.ranges -b ../base.qcow2 -F qcow2 v2.raw >sub/other.qcow2
'

test_expect_success 'a range file that the shell has just emptied for the image is refused' '
	cp changed.ranges c.map &&
	test_fails_with 1 "sqcow2: c.map: the range file is the output file" \
		sh -c "\"\$SQCOW2\" -r c.map -b base.qcow2 v2.raw >c.map"
'

test_expect_success 'an empty backing name or format is a usage error' '
	test_fails_with 2 - "$SQCOW2" -s 100M -r changed.ranges -b "" <<-EOF &&
	sqcow2: --backing needs a file name, not ${SQ}${SQ}
	EOF
	# The unset variable of a script: nothing written, not an overlay of nothing.
	test_fails_with 2 - \
		sh -c "\"\$SQCOW2\" -r changed.ranges -b \"\$PREV\" <v2.raw >unset.qcow2" <<-EOF &&
	sqcow2: --backing needs a file name, not ${SQ}${SQ}
	EOF
	test ! -s unset.qcow2 &&
	test_fails_with 2 - "$SQCOW2" -s 100M -r changed.ranges -b base.qcow2 -F "" <<-EOF
	sqcow2: --backing-format needs a format name, not ${SQ}${SQ}
	EOF
'

test_expect_success 'the longest name that fits, at 512-byte clusters' '
	# 104 header + 8 + 8 format extension + 8 end marker: 384 bytes left.
	name=$(printf "%0384d" 0) &&
	"$SQCOW2" -r changed.ranges -c 512 -u -b "$name" -F qcow2 <v2.raw >long.qcow2 &&
	test_eq "$(info long.qcow2 backing_file)" "$name" &&
	test_fails_with 2 "sqcow2: backing file name does not fit in the first cluster" \
		"$SQCOW2" -s 100M -r changed.ranges -c 512 -b "${name}0" -F qcow2 --print-size
'

test_expect_success 'without -p, nothing on stderr' '
	cat v1.raw | "$SQCOW2" -s 100M >/dev/null 2>err1 &&
	"$SQCOW2" <v1.raw -o quiet.qcow2 2>err2 &&
	"$SQCOW2" -r changed.ranges -b base.qcow2 <v2.raw >/dev/null 2>err3 &&
	test ! -s err1 && test ! -s err2 && test ! -s err3
'

# The clock of t/fault.c moves only when read: 1.5 s a reading passes the
# 1 s between lines of a log at every update, 0.3 s the 0.2 s of a console.
test_expect_success '-p on a file: plain lines, the last at 100%' '
	cat v1.raw | FAULTS=clock=1500 LD_PRELOAD=$FAULT_SO "$SQCOW2" -s 100M -p \
		>/dev/null 2>progress &&
	test "$(wc -l <progress)" -ge 5 &&
	! grep -q "$(printf "\\r")" progress &&
	tail -n 1 progress | grep -q "^sqcow2: 100.0% of 100.0 MiB, [0-9.]* MiB/s, [0-9]*:[0-5][0-9]$" &&
	head -n 1 progress | grep -q "^sqcow2:  *[0-9.]*% of 100.0 MiB, [0-9.]* MiB/s, 0:01" &&
	grep -q "^sqcow2:  *[0-9.]*% of 100.0 MiB, [0-9.]* MiB/s, [0-9]*:[0-5][0-9], [0-9]*:[0-5][0-9] left$" \
		progress
'

test_expect_success '-p on a console: one line rewritten, ended at 100%' '
	cat v1.raw | FAULTS="console clock=300" LD_PRELOAD=$FAULT_SO "$SQCOW2" -s 100M -p \
		>/dev/null 2>console &&
	test "$(tr -cd "\\r" <console | wc -c)" -ge 5 &&
	test_eq "$(wc -l <console)" 1 &&
	tr "\\r" "\\n" <console | tail -n 1 | grep -q "^sqcow2: 100.0% of 100.0 MiB"
'

test_expect_success '-p: the 100% line once, and time left before it' '
	make_raw tail.raw 1572964 && put_data tail.raw 0 1572964 &&
	cat tail.raw | FAULTS=clock=1500 LD_PRELOAD=$FAULT_SO "$SQCOW2" -s 1572964 -p \
		>/dev/null 2>progress &&
	cat progress &&
	test "$(wc -l <progress)" -ge 2 &&
	test_eq "$(grep -c "100.0%" progress)" 1 &&
	tail -n 1 progress | grep -q "^sqcow2: 100.0%" &&
	grep -q ", [0-9]*:[0-5][0-9] left$" progress
'

test_expect_success '-p: the rate is of bytes read, not of holes skipped' '
	make_raw holes.raw 64G && put_data holes.raw 30000000000 1048576 &&
	"$SQCOW2" -p <holes.raw >holes.qcow2 2>progress &&
	rate=$(sed -n "s/.*MiB, \([0-9]*\)\.[0-9] MiB\/s.*/\1/p" progress | tail -n 1) &&
	echo "rate $rate MiB/s" && test "$rate" -lt 20000
'

if command -v strace >/dev/null 2>&1; then
test_expect_success '-p: the kernel moves at most 8 MiB a call, for five updates a second' '
	make_raw moved.raw 64M && put_data moved.raw 0 67108864 &&
	ASAN_OPTIONS=detect_leaks=0 strace -e trace=copy_file_range -o cfr.trace \
		"$SQCOW2" -p <moved.raw >moved.qcow2 2>/dev/null &&
	verify moved.qcow2 moved.raw &&
	awk -F"= " "/copy_file_range/ { if (\$NF + 0 > 8388608) bad = 1; n++ }
		END { exit bad || n < 8 }" cfr.trace
'
else
	test_skip_missing '-p: the kernel moves at most 8 MiB a call, for five updates a second' 'strace not found'
fi

test_expect_success 'an error after a progress line starts a line of its own' '
	head -c 11M v1.raw | test_expect_code 1 env FAULTS="console clock=300" \
		LD_PRELOAD=$FAULT_SO "$SQCOW2" -s 100M -p >/dev/null 2>err &&
	tail -n 1 err >last &&
	echo "sqcow2: input ended at offset 11534336, before --size 104857600" >want &&
	test_cmp want last &&
	grep -q "$(printf "\\r")sqcow2: " err
'

# Guest file systems must not show through the image file: a probe reads
# the image's first clusters, and those hold the header and the tables.
have_all() {
	for tool in "$@"; do command -v "$tool" >/dev/null 2>&1 || return 1; done
}

if have_all blkid mkfs.ext4 mkfs.xfs mkfs.btrfs genisoimage; then
test_expect_success 'setup: ext4, xfs, btrfs and ISO 9660 disks' '
	make_raw ext4.raw 64M && mkfs.ext4 -q -F ext4.raw &&
	make_raw xfs.raw 300M && mkfs.xfs -q -f xfs.raw &&
	make_raw btrfs.raw 256M && mkfs.btrfs -q -f btrfs.raw >/dev/null &&
	mkdir -p iso.d && echo hello >iso.d/a.txt &&
	genisoimage -quiet -o iso.raw iso.d &&
	for fs in ext4 xfs btrfs iso; do
		test -n "$(blkid -p -o value -s TYPE $fs.raw)" || exit 1
	done
'

test_expect_success 'blkid -p finds no file system in any image of them' '
	for fs in ext4 xfs btrfs iso; do
		for cs in 512 4k 32k 64k 2M; do
			"$SQCOW2" -c $cs <$fs.raw >s.qcow2 &&
			"$SQCOW2" -c $cs -o o.qcow2 <$fs.raw &&
			"$SQCOW2" -c $cs --sparsify <$fs.raw >z.qcow2 &&
			for form in s o z; do
				test_expect_code 2 blkid -p $form.qcow2 &&
				verify $form.qcow2 $fs.raw || { echo "$fs, -c $cs, form $form"; exit 1; }
			done || exit 1
		done || exit 1
	done
'
else
	test_skip_missing 'blkid -p finds no file system in any image of them' \
		'blkid, mkfs.ext4, mkfs.xfs, mkfs.btrfs or genisoimage not found (Debian: e2fsprogs xfsprogs btrfs-progs genisoimage)'
fi

if have_all 7z && [ -e btrfs.raw ]; then
test_expect_success '7-Zip reads the -o form to its end, without a warning' '
	"$SQCOW2" -o 7z.qcow2 <btrfs.raw &&
	7z t 7z.qcow2 >7z.log 2>&1 &&
	grep -q "^Everything is Ok" 7z.log && ! grep -qi "warning" 7z.log
'
else
	test_skip_missing '7-Zip reads the -o form to its end, without a warning' '7z not found (Debian: p7zip-full)'
fi

test_done

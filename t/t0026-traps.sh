#!/bin/sh
# The traps a user walks into around the converter and the decoder, each
# of which once exited 0 with a wrong result: an output that is the input,
# a qcow2 image as --diff's base or as the disk, a base shorter than the
# backing image, a failed -d that looks complete, parts of different
# images, backing names that cannot be right.  And the lesser ones: the
# peak memory of -v, -o --no-sparsify, hints, -p over two passes, -t.
. "$(dirname "$0")/lib.sh"

FAULT_SO=${FAULT_SO:-$(dirname "$READBACK")/fault.so}
ASAN_OPTIONS=verify_asan_link_order=0:${ASAN_OPTIONS:-}
export FAULT_SO ASAN_OPTIONS

test_expect_success 'setup: two days of a disk' '
	make_raw monday.raw 8M && put_data monday.raw 0 100000 &&
	put_data monday.raw 3000000 1000000 && put_data monday.raw 8000000 388608 &&
	cp monday.raw tuesday.raw && put_data tuesday.raw 50000 1000 &&
	head -c 1000000 /dev/zero |
		dd of=tuesday.raw bs=1000 seek=3000 conv=notrunc status=none &&
	"$SQCOW2" monday.raw >monday.qcow2 && cp monday.raw keep.raw
'

test_expect_success '-o naming the input, by any name, is refused and the input kept' '
	ln -s monday.raw link.raw && ln monday.raw hard.raw &&
	for name in monday.raw link.raw hard.raw; do
		test_fails_with 1 "sqcow2: monday.raw: input file is output file" \
			"$SQCOW2" -o $name monday.raw || exit 1
	done &&
	test_fails_with 1 "sqcow2: stdin: input file is output file" \
		sh -c "\"\$SQCOW2\" -o /proc/self/fd/0 <monday.raw" &&
	cmp monday.raw keep.raw && test -L link.raw &&
	cp monday.qcow2 keep.qcow2 &&
	test_fails_with 1 "sqcow2: monday.qcow2: input file is output file" \
		"$SQCOW2" -d -o monday.qcow2 monday.qcow2 &&
	cmp monday.qcow2 keep.qcow2 && test -z "$(ls -A | grep sqcow2-)"
'

# Tuesday zeroed a region Monday held data in: left to the backing file,
# it would still read as Monday's.
test_expect_success '--diff of the previous image itself: its disk is the base' '
	"$SQCOW2" --diff monday.raw -b monday.qcow2 -F qcow2 tuesday.raw >from-raw.qcow2 &&
	"$SQCOW2" --diff monday.qcow2 -b monday.qcow2 -F qcow2 tuesday.raw >from-image.qcow2 &&
	cmp from-raw.qcow2 from-image.qcow2 &&
	test "$(info from-image.qcow2 zero_clusters)" -gt 0 &&
	verify_overlay from-image.qcow2 tuesday.raw &&
	"$SQCOW2" --diff monday.qcow2 -b monday.qcow2 -F qcow2 -o o.qcow2 tuesday.raw &&
	verify_overlay o.qcow2 tuesday.raw &&
	cat tuesday.raw | "$SQCOW2" -s 8M --diff monday.qcow2 -b monday.qcow2 -F qcow2 \
		-o piped.qcow2 && cmp o.qcow2 piped.qcow2 &&
	"$SQCOW2" -o monday-o.qcow2 monday.raw &&
	"$SQCOW2" --diff monday-o.qcow2 -b monday.qcow2 -F qcow2 tuesday.raw >from-o.qcow2 &&
	cmp from-raw.qcow2 from-o.qcow2
'

test_expect_success 'a --diff base shorter than the backing image is refused' '
	head -c 5000000 monday.raw >partial.raw &&
	test_fails_with 1 "sqcow2: --diff partial.raw holds 5000000 bytes, -b monday.qcow2 a disk of 8388608: they must be the same disk (a partial copy?)" \
		sh -c "\"\$SQCOW2\" --diff partial.raw -b monday.qcow2 -F qcow2 tuesday.raw >p.qcow2" &&
	test_fails_with 1 "sqcow2: --diff partial.raw holds 5000000 bytes, -b monday.raw a disk of 8388608: they must be the same disk (a partial copy?)" \
		sh -c "\"\$SQCOW2\" --diff partial.raw -b monday.raw -F raw tuesday.raw >p.qcow2"
'

test_expect_success 'a qcow2 image as the raw disk is refused, from a file and a pipe' '
	test_fails_with 1 "sqcow2: monday.qcow2: a qcow2 image, not a raw disk: sqcow2 -d reads it (-f raw takes it as a disk all the same)" \
		sh -c "\"\$SQCOW2\" monday.qcow2 >x.qcow2" &&
	size=$(file_size monday.qcow2) &&
	test_fails_with 1 "sqcow2: stdin: a qcow2 image, not a raw disk: sqcow2 -d reads it (-f raw takes it as a disk all the same)" \
		sh -c "cat monday.qcow2 | \"\$SQCOW2\" -s $size >x.qcow2" &&
	test_eq "$(file_size x.qcow2)" 0 &&
	test_fails_with 1 "sqcow2: monday.qcow2: a qcow2 image, not a raw disk: sqcow2 -d --map reads it (-f raw takes it as a disk all the same)" \
		"$SQCOW2" --map monday.qcow2 &&
	cat monday.qcow2 | "$SQCOW2" -f raw -s $size >nested.qcow2 &&
	verify nested.qcow2 monday.qcow2 &&
	"$SQCOW2" -f raw -o nested-o.qcow2 monday.qcow2 && verify nested-o.qcow2 monday.qcow2 &&
	test_fails_with 2 "sqcow2: -f vmdk: sqcow2 reads raw disks, and with -d qcow2 images" \
		"$SQCOW2" -f vmdk monday.raw
'

# A failed -d to a file must not be of the disk's size, however it fails.
incomplete() {
	test "$(file_size "$1")" -lt 8388608 ||
		{ echo "$1 has the size of the disk"; return 1; }
}

test_expect_success 'a failed -d to a file never has the size of the disk' '
	head -c 400000 monday.qcow2 >short.qcow2 &&
	cat short.qcow2 | test_expect_code 1 "$SQCOW2" -d >short.raw 2>err &&
	incomplete short.raw &&
	"$SQCOW2" --no-sparsify monday.raw >dense.qcow2 &&
	test_expect_code 1 env FAULTS=enospc=1000000 LD_PRELOAD=$FAULT_SO \
		"$SQCOW2" -d dense.qcow2 >full.raw 2>err &&
	incomplete full.raw &&
	mkfifo d.fifo && run_bg feeder feed dense.qcow2 6000000 d.fifo &&
	run_bg pid "$SQCOW2" -d <d.fifo >killed.raw &&
	wait_for test -e d.fifo.fed && kill -KILL $pid && test_expect_code 137 wait $pid &&
	kill $feeder && test "$(file_size killed.raw)" -gt 4000000 && incomplete killed.raw &&
	"$SQCOW2" -d dense.qcow2 >whole.raw && cmp whole.raw monday.raw
'

test_expect_success '--expect-size: the image must be that long, or nothing is written' '
	size=$("$SQCOW2" --no-sparsify --print-size tuesday.raw) &&
	"$SQCOW2" --no-sparsify --expect-size $size tuesday.raw >ok.qcow2 &&
	test_eq "$(file_size ok.qcow2)" $size &&
	test_fails_with 1 "sqcow2: the image would be $("$SQCOW2" --print-size tuesday.raw) bytes, not the $size of --expect-size: other options, or another disk" \
		sh -c "\"\$SQCOW2\" --sparsify --slice 0:1M --expect-size $size tuesday.raw >part.qcow2" &&
	test_eq "$(file_size part.qcow2)" 0 &&
	"$SQCOW2" --no-sparsify --slice 1M: --expect-size $size tuesday.raw >tail.qcow2 &&
	test_eq "$(file_size tail.qcow2)" $((size - 1048576)) &&
	test_fails_with 2 "sqcow2: --expect-size is the size of the stream form, which -o does not write (its image is that size or smaller)" \
		"$SQCOW2" -o x.qcow2 --expect-size $size tuesday.raw
'

test_expect_success 'a backing name that does not resolve from the image is refused; -u writes it' '
	mkdir -p sub &&
	test_fails_with 1 "sqcow2: -b monday.qcow2 (sub/monday.qcow2, from the image${SQ}s directory, as QEMU will read it; -u if it will exist only where the image goes): No such file or directory" \
		"$SQCOW2" --diff monday.raw -b monday.qcow2 -F qcow2 -o sub/t.qcow2 tuesday.raw &&
	test ! -e sub/t.qcow2 &&
	"$SQCOW2" --diff monday.raw -b ../monday.qcow2 -F qcow2 -o sub/t.qcow2 tuesday.raw &&
	test_expect_code 1 "$SQCOW2" --diff monday.raw -b monday.qcow2 -F qcow2 tuesday.raw \
		>sub/s.qcow2 2>err &&
	grep -q "^sqcow2: -b monday.qcow2 (/.*/sub/monday.qcow2, from the image" err &&
	"$SQCOW2" --diff monday.raw -u -b monday.qcow2 -F qcow2 tuesday.raw >sub/u.qcow2 &&
	test_eq "$(info sub/u.qcow2 backing_file)" monday.qcow2 &&
	"$SQCOW2" --diff monday.raw -b monday.qcow2 -F qcow2 tuesday.raw | cat >piped.qcow2
'

test_expect_success 'a backing format that is not the file'"'"'s, or not QEMU'"'"'s, is refused' '
	test_fails_with 1 "sqcow2: -b monday.qcow2 is a qcow2 file, not -F raw: QEMU would read it as raw" \
		sh -c "\"\$SQCOW2\" --diff monday.raw -b monday.qcow2 -F raw tuesday.raw >f.qcow2" &&
	test_fails_with 1 "sqcow2: -b monday.raw is a raw file, not -F qcow2: QEMU would read it as qcow2" \
		sh -c "\"\$SQCOW2\" --diff monday.raw -b monday.raw -F qcow2 tuesday.raw >f.qcow2" &&
	test_fails_with 2 "sqcow2: --backing-format ${SQ}qcow 2${SQ} is no format QEMU opens (raw, qcow2, vmdk, ...)" \
		"$SQCOW2" --diff monday.raw -b monday.qcow2 -F "qcow 2" tuesday.raw &&
	"$SQCOW2" --diff monday.raw -b monday.raw -F raw tuesday.raw >r.qcow2 &&
	verify_overlay r.qcow2 tuesday.raw
'

test_expect_success '-v tells the program'"'"'s own peak memory, not its parent'"'"'s' '
	python3 -c "import os, sys
hog = bytearray(300 << 20)
os.execv(sys.argv[1], sys.argv[1:])" "$SQCOW2" -v -o v.qcow2 monday.raw 2>stats &&
	kib=$(sed -n "s/.*peak memory \([0-9]*\) KiB/\1/p" stats) &&
	echo "peak $kib KiB" && test "$kib" -lt 102400
'

test_expect_success '-o --no-sparsify stores the clusters of zeros, as the stream form does' '
	"$SQCOW2" --no-sparsify monday.raw >stream.qcow2 &&
	"$SQCOW2" --no-sparsify -o kept.qcow2 monday.raw && verify kept.qcow2 monday.raw &&
	test_eq "$(info kept.qcow2 data_clusters)" "$(info stream.qcow2 data_clusters)" &&
	"$SQCOW2" -o dropped.qcow2 tuesday.raw &&
	"$SQCOW2" --no-sparsify -o kept2.qcow2 tuesday.raw &&
	test "$(info dropped.qcow2 data_clusters)" -lt "$(info kept2.qcow2 data_clusters)"
'

test_expect_success 'habits of gzip and qemu-img get a hint' '
	test_fails_with 2 "sqcow2: unexpected argument ${SQ}out.qcow2${SQ}: one raw disk at most; the image goes to stdout, or to -o FILE" \
		"$SQCOW2" monday.raw out.qcow2 &&
	test_fails_with 2 "sqcow2: -c is the cluster size, not ${SQ}monday.raw${SQ}; the image goes to stdout, or to -o FILE" \
		"$SQCOW2" -c monday.raw &&
	printf "Offset          Length          Mapped to       File\n0 0x10000 0x50000 m.qcow2\n" >human.map &&
	test_fails_with 1 "sqcow2: human.map line 1: the map qemu-img prints for people: give it --output=json" \
		"$SQCOW2" -s 8M -r human.map --print-size
'

test_expect_success '-p over two passes shows each, out of the disk once' '
	FAULTS=clock=1500 LD_PRELOAD=$FAULT_SO "$SQCOW2" -p monday.raw >p.qcow2 2>progress &&
	grep -q "^sqcow2: pass 1 of 2: *[0-9.]*% of 8.0 MiB" progress &&
	grep -q "^sqcow2: pass 2 of 2: *[0-9.]*% of 8.0 MiB" progress &&
	test_eq "$(grep -c "100.0%" progress)" 1 &&
	tail -n 1 progress | grep -q "^sqcow2: pass 2 of 2: 100.0% of 8.0 MiB" &&
	! grep -q "of 16.0 MiB" progress
'

test_expect_success '-t decodes an image whole and writes nothing; 0 only if all of it reads' '
	"$SQCOW2" -t monday.qcow2 >out 2>err && test ! -s out && test ! -s err &&
	cat monday.qcow2 | "$SQCOW2" -t &&
	"$SQCOW2" -t -v dense.qcow2 2>stats && grep -q "^sqcow2: read " stats &&
	test_expect_code 1 "$SQCOW2" -t short.qcow2 2>err &&
	grep -q "^sqcow2: short.qcow2: L2 entry at offset [0-9]* (guest offset [0-9]*) points to [0-9]*, past the end of the file (400000 bytes)$" err &&
	cat short.qcow2 | test_expect_code 1 "$SQCOW2" -t 2>err &&
	grep -q "^sqcow2: stdin: image truncated at offset 400000" err &&
	test_fails_with 2 "sqcow2: -t writes nothing: --output does not go with it" \
		"$SQCOW2" -t -o x.raw monday.qcow2
'

test_expect_success '-d refuses stderr as its output before touching it, as encoding does' '
	echo "a log" >log && cp log log.before &&
	test_expect_code 2 "$SQCOW2" -d -v -o /dev/stderr monday.qcow2 2>>log &&
	head -n 1 log | test_cmp log.before - &&
	test_expect_code 2 "$SQCOW2" -v -o /dev/stderr monday.raw 2>>log &&
	head -n 1 log | test_cmp log.before - &&
	grep -q "^sqcow2: stderr is the output: -p and -v would write into the disk$" log
'

test_expect_success '--version gives the version the man page gives' '
	v=$("$SQCOW2" --version) &&
	test_eq "sqcow2 $(sed -n "s/^Print the version, \(.*\), and exit\.$/\1/p" "$T_DIR/../man/sqcow2.1")" "$v" &&
	echo "$v" | grep -qx "sqcow2 [0-9]*\.[0-9]*\.[0-9]*"
'

test_done

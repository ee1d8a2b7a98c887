#!/bin/sh
# Every way the input or the options can be wrong: one line on stderr and
# the documented exit status.
. "$(dirname "$0")/lib.sh"

test_expect_success 'setup' '
	make_raw disk.raw 1M && put_data disk.raw 4096 100 && echo "4096 100" >disk.ranges
'

test_expect_success 'usage errors exit 2 with one line' '
	test_fails_with 2 "sqcow2: --size is needed when stdin is not a file or a block device" "$SQCOW2" &&
	test_fails_with 2 - "$SQCOW2" -s 12X <<-EOF &&
	sqcow2: bad size ${SQ}12X${SQ}: a number of bytes, or with k, M, G, T, P or E for powers of 1024
	EOF
	test_fails_with 2 - "$SQCOW2" --size= <<-EOF &&
	sqcow2: bad size ${SQ}${SQ}: a number of bytes, or with k, M, G, T, P or E for powers of 1024
	EOF
	test_fails_with 2 - "$SQCOW2" -s -1 <<-EOF &&
	sqcow2: bad size ${SQ}-1${SQ}: a number of bytes, or with k, M, G, T, P or E for powers of 1024
	EOF
	test_fails_with 2 - "$SQCOW2" -s " 1" <<-EOF &&
	sqcow2: bad size ${SQ} 1${SQ}: a number of bytes, or with k, M, G, T, P or E for powers of 1024
	EOF
	test_fails_with 2 - "$SQCOW2" -s 1kk <<-EOF &&
	sqcow2: bad size ${SQ}1kk${SQ}: a number of bytes, or with k, M, G, T, P or E for powers of 1024
	EOF
	test_fails_with 2 - "$SQCOW2" -s 16384P <<-EOF &&
	sqcow2: bad size ${SQ}16384P${SQ}: too large
	EOF
	test_fails_with 2 - "$SQCOW2" -s 18446744073709551616 <<-EOF &&
	sqcow2: bad size ${SQ}18446744073709551616${SQ}: a number of bytes, or with k, M, G, T, P or E for powers of 1024
	EOF
	test_fails_with 2 - "$SQCOW2" -s 1M -c 256 <<-EOF &&
	sqcow2: cluster size must be a power of two from 512 to 2M, not ${SQ}256${SQ}
	EOF
	test_fails_with 2 - "$SQCOW2" -s 1M -c 4M <<-EOF &&
	sqcow2: cluster size must be a power of two from 512 to 2M, not ${SQ}4M${SQ}
	EOF
	test_fails_with 2 - "$SQCOW2" -s 1M -c 3k <<-EOF &&
	sqcow2: cluster size must be a power of two from 512 to 2M, not ${SQ}3k${SQ}
	EOF
	test_fails_with 2 - "$SQCOW2" -s 1M -c x <<-EOF &&
	sqcow2: cluster size must be a power of two from 512 to 2M, not ${SQ}x${SQ}
	EOF
	test_fails_with 2 - "$SQCOW2" --bogus <<-EOF &&
	sqcow2: unknown option ${SQ}--bogus${SQ}; try ${SQ}sqcow2 --help${SQ}
	EOF
	test_fails_with 2 - "$SQCOW2" -x <<-EOF &&
	sqcow2: unknown option ${SQ}-x${SQ}; try ${SQ}sqcow2 --help${SQ}
	EOF
	test_fails_with 2 - "$SQCOW2" -s 1M --ranges <<-EOF &&
	sqcow2: option ${SQ}--ranges${SQ} needs a value
	EOF
	test_fails_with 2 - "$SQCOW2" -s 1M disk.raw other.raw <<-EOF
	sqcow2: unexpected argument ${SQ}other.raw${SQ}: one raw disk at most; the image goes to stdout, or to -o FILE
	EOF
'

test_expect_success 'the raw disk as an argument, as cat takes a file' '
	"$SQCOW2" disk.raw >arg.qcow2 && verify arg.qcow2 disk.raw &&
	"$SQCOW2" <disk.raw >stdin.qcow2 && cmp arg.qcow2 stdin.qcow2 &&
	"$SQCOW2" - <disk.raw >dash.qcow2 && cmp arg.qcow2 dash.qcow2 &&
	"$SQCOW2" -i - <disk.raw >idash.qcow2 && cmp arg.qcow2 idash.qcow2 &&
	cat disk.raw | "$SQCOW2" -s 1M - >pipe.qcow2 && verify pipe.qcow2 disk.raw &&
	test_fails_with 2 - "$SQCOW2" -i disk.raw disk.raw <<-EOF
	sqcow2: the input is given twice: ${SQ}disk.raw${SQ} and ${SQ}disk.raw${SQ}
	EOF
'

test_expect_success '--map maps the disk of -i, or of the argument' '
	make_raw other.raw 3M && put_data other.raw 2097152 10 &&
	"$SQCOW2" --map -i other.raw <disk.raw >i.map &&
	"$SQCOW2" --map other.raw <disk.raw >arg.map &&
	test_cmp i.map arg.map &&
	grep -q "^# data ranges of other.raw, 3145728 bytes" i.map &&
	grep -q "^2097152 " i.map
'

test_expect_success 'messages name the input given, not stdin' '
	cat disk.raw | test_expect_code 2 "$SQCOW2" -i /dev/stdin >/dev/null 2>err &&
	echo "sqcow2: --size is needed when /dev/stdin is not a file or a block device" >want &&
	test_cmp want err &&
	test_fails_with 1 "sqcow2: /tmp: Is a directory" "$SQCOW2" -i /tmp &&
	test_fails_with 1 "sqcow2: /tmp: Is a directory" "$SQCOW2" --map /tmp
'

test_expect_success 'the same file in and out is refused, as cat does' '
	cp disk.raw same.raw &&
	test_fails_with 1 "sqcow2: stdin: input file is output file" \
		sh -c "\"\$SQCOW2\" <same.raw >>same.raw" &&
	cmp same.raw disk.raw &&
	test_fails_with 1 "sqcow2: same.raw: input file is output file" \
		sh -c "\"\$SQCOW2\" same.raw >same.raw"
'

if command -v script >/dev/null 2>&1; then
test_expect_success 'a terminal on stdin is refused, and a bare sqcow2 points to --help' '
	test_expect_code 2 script -qec "\"\$SQCOW2\" -s 1M >tty.qcow2" /dev/null >tty.out </dev/null &&
	grep -q "sqcow2: refusing to read from a terminal; try ${SQ}sqcow2 --help${SQ}" tty.out &&
	test_expect_code 2 script -qec "\"\$SQCOW2\"" /dev/null >bare.out </dev/null &&
	grep -q "try ${SQ}sqcow2 --help${SQ}" bare.out &&
	# -d reads an image and writes a disk: neither is named wrong.
	test_expect_code 2 script -qec "\"\$SQCOW2\" -d >tty.raw" /dev/null >dtty.out </dev/null &&
	grep -q "sqcow2: refusing to read from a terminal" dtty.out &&
	"$SQCOW2" disk.raw >d.qcow2 &&
	test_expect_code 2 script -qec "\"\$SQCOW2\" -d d.qcow2" /dev/null >dout.out </dev/null &&
	grep -q "sqcow2: refusing to write to a terminal" dout.out
'
else
	test_skip_missing 'a terminal on stdin is refused, and a bare sqcow2 points to --help' 'script not found (Debian: bsdutils)'
fi

test_expect_success 'sizes as users write them: fractions, KiB, E, bytes' '
	: >none.ranges &&
	for pair in 1.5G:1610612736 20GiB:21474836480 1.25M:1310720 0.5k:512 \
	    512B:512 1KiB:1024 2mib:2097152 1.50G:1610612736; do
		"$SQCOW2" -s ${pair%%:*} -r none.ranges --print-size >got &&
		"$SQCOW2" -s ${pair#*:} -r none.ranges --print-size >want &&
		test_cmp want got || exit 1
	done &&
	test_fails_with 2 - "$SQCOW2" -s 20GB <<-EOF &&
	sqcow2: bad size ${SQ}20GB${SQ}: KB, MB, GB... mean powers of 1000 to some and 1024 to others: write k, M, G... or KiB, MiB, GiB... for 1024
	EOF
	test_fails_with 2 - "$SQCOW2" -s 1.1k <<-EOF &&
	sqcow2: bad size ${SQ}1.1k${SQ}: not a whole number of bytes
	EOF
	test_fails_with 2 - "$SQCOW2" -s 1M -c 4MB <<-EOF
	sqcow2: cluster size must be a power of two from 512 to 2M, not ${SQ}4MB${SQ}
	EOF
'

test_expect_success 'size suffixes are powers of 1024' '
	for pair in 1k:1024 1K:1024 2M:2097152 1G:1073741824 1T:1099511627776 0x400:1024; do
		"$SQCOW2" -s ${pair%%:*} --print-size >got &&
		"$SQCOW2" -s ${pair#*:} --print-size >want &&
		test_cmp want got || exit 1
	done &&
	"$SQCOW2" -s 1E -c 2M -r none.ranges --print-size >got &&
	"$SQCOW2" -s 1152921504606846976 -c 2M -r none.ranges --print-size >want &&
	test_cmp want got
'

test_expect_success '--help and --version succeed on stdout' '
	"$SQCOW2" --help >out 2>err && grep -q "^Usage: sqcow2" out && test ! -s err &&
	"$SQCOW2" -h >out2 && test_cmp out out2 &&
	"$SQCOW2" --version >v && grep -q "^sqcow2 [0-9]" v
'

test_expect_success 'a missing range file' '
	test_fails_with 1 "sqcow2: nope.ranges: No such file or directory" \
		"$SQCOW2" -s 1M -r nope.ranges
'

test_expect_success 'bad range lines name the file and line' '
	printf "# header\n\n0 512\n\n\n\n4096 1048576\n" >l7.ranges &&
	test_fails_with 1 "sqcow2: l7.ranges line 7: range ends beyond --size" \
		"$SQCOW2" -s 1M -r l7.ranges &&
	echo "1048576 1" >beyond.ranges &&
	test_fails_with 1 "sqcow2: beyond.ranges line 1: offset beyond --size" \
		"$SQCOW2" -s 1M -r beyond.ranges &&
	echo "0 0" >zero.ranges &&
	test_fails_with 1 "sqcow2: zero.ranges line 1: zero length" \
		"$SQCOW2" -s 1M -r zero.ranges &&
	echo "0 -5" >neg.ranges &&
	test_fails_with 1 "sqcow2: neg.ranges line 1: bad length" \
		"$SQCOW2" -s 1M -r neg.ranges &&
	echo "-1 5" >negoff.ranges &&
	test_fails_with 1 "sqcow2: negoff.ranges line 1: bad offset" \
		"$SQCOW2" -s 1M -r negoff.ranges &&
	echo "12" >short.ranges &&
	test_fails_with 1 "sqcow2: short.ranges line 1: expected OFFSET LENGTH" \
		"$SQCOW2" -s 1M -r short.ranges &&
	echo "0 12 13" >junk.ranges &&
	test_fails_with 1 "sqcow2: junk.ranges line 1: junk after length" \
		"$SQCOW2" -s 1M -r junk.ranges &&
	echo "18446744073709551615 18446744073709551615" >wrap.ranges &&
	test_fails_with 1 "sqcow2: wrap.ranges line 1: offset beyond --size" \
		"$SQCOW2" -s 1M -r wrap.ranges
'

test_expect_success 'a virtual size QEMU cannot open' '
	: >none.ranges &&
	"$SQCOW2" -s 128G -c 512 -r none.ranges --print-size >/dev/null &&
	test_fails_with 1 - "$SQCOW2" -s $(((128 << 30) + 1)) -c 512 -r none.ranges --print-size <<-EOF &&
	sqcow2: virtual size too large for this cluster size (L1 table over 32 MiB): -c 1k or more makes it fit
	EOF
	"$SQCOW2" -s 2P -r none.ranges --print-size >/dev/null &&
	test_fails_with 1 - "$SQCOW2" -s 3P -r none.ranges --print-size <<-EOF &&
	sqcow2: virtual size too large for this cluster size (L1 table over 32 MiB): -c 128k or more makes it fit
	EOF
	test_fails_with 1 - "$SQCOW2" -s 1E -r none.ranges --print-size <<-EOF &&
	sqcow2: virtual size too large for this cluster size (L1 table over 32 MiB): -c 2M or more makes it fit
	EOF
	"$SQCOW2" -s 2E -c 2M -r none.ranges --print-size >/dev/null &&
	test_fails_with 1 - "$SQCOW2" -s 3E -c 2M -r none.ranges --print-size <<-EOF &&
	sqcow2: virtual size too large for this cluster size (L1 table over 32 MiB): no cluster size does: QEMU opens at most 2 EiB, at -c 2M
	EOF
	test_fails_with 1 "sqcow2: image too large (refcount table over 8 MiB)" \
		"$SQCOW2" -s 128G -c 512 --print-size
'

test_expect_success 'input shorter than --size' '
	head -c 300000 disk.raw >short.raw &&
	test_fails_with 1 "sqcow2: input ended at offset 300000, before --size 1048576" \
		sh -c "cat short.raw | \"\$SQCOW2\" -s 1M -r disk.ranges >out.qcow2" &&
	head -c 1000 disk.raw >shorter.raw &&
	test_fails_with 1 "sqcow2: input ended at offset 1000, before --size 1048576" \
		sh -c "cat shorter.raw | \"\$SQCOW2\" -s 1M -r disk.ranges >out.qcow2" &&
	test_fails_with 1 "sqcow2: input ended at offset 0, before --size 1048576" \
		sh -c "\"\$SQCOW2\" -s 1M -r disk.ranges </dev/null >out.qcow2"
'

test_expect_success 'input longer than --size' '
	test_fails_with 1 "sqcow2: input longer than --size 1048575" \
		sh -c "cat disk.raw | \"\$SQCOW2\" -s 1048575 -r disk.ranges >out.qcow2"
'

test_expect_success 'a non-zero byte outside the ranges' '
	cp disk.raw stale.raw && printf "\\001" |
		dd of=stale.raw bs=1 seek=700001 conv=notrunc status=none &&
	test_fails_with 1 "sqcow2: non-zero byte at input offset 700001, outside the ranges" \
		sh -c "cat stale.raw | \"\$SQCOW2\" -s 1M -r disk.ranges >out.qcow2" &&
	: >none.ranges &&
	test_fails_with 1 "sqcow2: non-zero byte at input offset 4096, outside the ranges" \
		sh -c "cat disk.raw | \"\$SQCOW2\" -s 1M -r none.ranges >out.qcow2"
'

test_expect_success 'bytes outside the ranges but inside a stored cluster are kept' '
	cp disk.raw near.raw && put_data near.raw 60000 10 &&
	convert near.raw near.qcow2 -s 1M -r disk.ranges &&
	verify near.qcow2 near.raw
'

if test -w /dev/full; then
test_expect_success 'a full disk (ENOSPC) is reported' '
	test_fails_with 1 "sqcow2: stdout: No space left on device" \
		sh -c "cat disk.raw | \"\$SQCOW2\" -s 1M -r disk.ranges >/dev/full"
'
else
	test_skip_missing 'a full disk (ENOSPC) is reported' '/dev/full is not writable here'
fi

test_expect_success 'a reader that goes away (EPIPE) is reported' '
	make_raw long.raw 64M &&
	cat long.raw | save_status status "$SQCOW2" -s 64M 2>err | head -c 1000 >/dev/null &&
	test_eq "$(cat status)" 1 &&
	echo "sqcow2: stdout: Broken pipe" >want && test_cmp want err
'

test_done

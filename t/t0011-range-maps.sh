#!/bin/sh
# Range files as other tools write them, and as a guess from their first
# line misread them: each read wrong drops changes from an overlay
# without a word, since -b checks nothing outside the ranges.
. "$(dirname "$0")/lib.sh"

# verify_overlay IMAGE RAW: a valid overlay whose chain reads as RAW.
verify_overlay() {
	"$READBACK" check "$1" || return 1
	[ "$HAVE_QEMU" = 1 ] || return 0
	qemu-img check -q "$1" || { echo "qemu-img check failed: $1"; return 1; }
	qemu-img compare -q "$1" "$2" || { echo "qemu-img compare: $1 differs from $2"; return 1; }
}

# A disk of zeros, then the same with data in two 64 KiB clusters.
make_raw zeros.raw 1M && "$SQCOW2" <zeros.raw >zeros.qcow2 &&
cp zeros.raw two.raw && put_data two.raw 65536 65536 && put_data two.raw 262144 65536

test_expect_success 'lone CRs end lines: both ranges are stored' '
	printf "65536 65536\r262144 65536\r" >cr.ranges &&
	"$SQCOW2" -r cr.ranges -b zeros.qcow2 -F qcow2 <two.raw >cr.qcow2 &&
	verify_overlay cr.qcow2 two.raw &&
	test_eq "$(info cr.qcow2 data_clusters)" 2 &&
	"$SQCOW2" -r cr.ranges <two.raw >cr-full.qcow2 && verify cr-full.qcow2 two.raw
'

test_expect_success 'CRLF ends a line once: line numbers stay right' '
	printf "65536 65536\r\n262144 65536\r\n" >crlf.ranges &&
	"$SQCOW2" -r crlf.ranges -b zeros.qcow2 -F qcow2 <two.raw >crlf.qcow2 &&
	cmp crlf.qcow2 cr.qcow2 &&
	printf "# disk\r\n\r\n65536 65536\r\nx 1\r\n" >bad-crlf.ranges &&
	test_fails_with 1 "sqcow2: bad-crlf.ranges line 4: bad offset" \
		"$SQCOW2" -s 1M -r bad-crlf.ranges --print-size &&
	printf "65536 65536\r\r262144 0\r" >bad-cr.ranges &&
	test_fails_with 1 "sqcow2: bad-cr.ranges line 3: zero length" \
		"$SQCOW2" -s 1M -r bad-cr.ranges --print-size
'

test_expect_success 'two pairs on a line are an error, not an nbdinfo map' '
	printf "65536 65536 262144 65536\n" >pairs.ranges &&
	test_fails_with 1 "sqcow2: pairs.ranges line 1: junk after length" \
		sh -c "\"\$SQCOW2\" -r pairs.ranges -b zeros.qcow2 -F qcow2 <two.raw >pairs.qcow2"
'

test_expect_success 'a line of the other format is an error naming it' '
	printf "65536 65536\n262144 65536 0 data\n" >mixed.ranges &&
	test_fails_with 1 "sqcow2: mixed.ranges line 2: nbdinfo line in a plain range file" \
		"$SQCOW2" -s 1M -r mixed.ranges --print-size &&
	printf "0 65536 3 hole,zero\n65536 65536 0 data\n262144 65536\n" >mixed.map &&
	test_fails_with 1 "sqcow2: mixed.map line 3: plain line in an nbdinfo map" \
		"$SQCOW2" -s 1M -r mixed.map --print-size
'

test_done

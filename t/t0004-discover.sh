#!/bin/sh
# Ranges found without a range file: SEEK_DATA/SEEK_HOLE on a file on
# stdin, --map, and the listings of qemu-img map and nbdinfo --map.
. "$(dirname "$0")/lib.sh"

# A 1 GiB sparse disk with data at a few places, some sharing a cluster.
test_expect_success 'setup' '
	make_raw sparse.raw 1G &&
	put_data sparse.raw 0 5000 && put_data sparse.raw 70000 10 &&
	put_data sparse.raw 536800000 200000 && put_data sparse.raw 1073741000 824
'

# bytes_read VERBOSE_LINE: what sqcow2 -v said it read.
bytes_read() {
	sed -n 's/^sqcow2: read \([0-9]*\) bytes.*/\1/p' "$1"
}

test_expect_success 'a sparse file on stdin converts with no options' '
	"$SQCOW2" -v <sparse.raw >sparse.qcow2 2>stats &&
	verify sparse.qcow2 sparse.raw &&
	test_eq "$(info sparse.qcow2 virtual_size)" 1073741824
'

test_expect_success 'its holes are skipped, not read' '
	read=$(bytes_read stats) &&
	echo "read $read bytes" &&
	# Twice the clusters of data at most: the zero scan, then the copy.
	test "$read" -gt 0 && test "$read" -le $((2 * 8 * 65536))
'

test_expect_success 'what is read grows with the data, not the virtual size' '
	make_raw huge.raw 64G && put_data huge.raw 0 5000 && put_data huge.raw 70000 10 &&
	put_data huge.raw 536800000 200000 && put_data huge.raw 1073741000 824 &&
	"$SQCOW2" -v <huge.raw >huge.qcow2 2>hstats &&
	verify huge.qcow2 huge.raw &&
	test_eq "$(bytes_read hstats)" "$(bytes_read stats)" &&
	test_eq "$(info huge.qcow2 data_clusters)" "$(info sparse.qcow2 data_clusters)" &&
	grep -q "peak memory" hstats
'

test_expect_success '--print-size with size and ranges from the file' '
	"$SQCOW2" --print-size <sparse.raw >size &&
	test_eq "$(cat size)" "$(file_size sparse.qcow2)"
'

test_expect_success 'a range file with a seekable stdin skips the holes between ranges' '
	printf "0 5000\n70000 10\n536800000 200000\n1073741000 824\n" >sparse.ranges &&
	"$SQCOW2" -v -r sparse.ranges <sparse.raw >r.qcow2 2>rstats &&
	verify r.qcow2 sparse.raw &&
	test "$(bytes_read rstats)" -le $((2 * 8 * 65536))
'

test_expect_success 'a seekable stdin still fails on data outside the ranges' '
	printf "0 5000\n536800000 200000\n1073741000 824\n" >stale.ranges &&
	test_fails_with 1 "sqcow2: non-zero byte at input offset 70000, outside the ranges" \
		sh -c "\"\$SQCOW2\" -r stale.ranges <sparse.raw >out.qcow2"
'

test_expect_success 'a dense file with no holes is all data' '
	make_raw dense.raw 3000000 && put_data dense.raw 0 3000000 &&
	"$SQCOW2" <dense.raw >dense.qcow2 && verify dense.qcow2 dense.raw &&
	test_eq "$(info dense.qcow2 data_clusters)" 46
'

test_expect_success 'an empty file' '
	: >empty.raw && "$SQCOW2" <empty.raw >empty.qcow2 && verify empty.qcow2 empty.raw
'

test_expect_success '--size must agree with the file on stdin' '
	test_fails_with 1 "sqcow2: input ended at offset 1073741824, before --size 2147483648" \
		sh -c "\"\$SQCOW2\" -s 2G <sparse.raw >out.qcow2" &&
	test_fails_with 1 "sqcow2: input longer than --size 1048576" \
		sh -c "\"\$SQCOW2\" -s 1M <sparse.raw >out.qcow2"
'

test_expect_success 'a pipe needs --size' '
	test_fails_with 2 "sqcow2: --size is needed when stdin is not a file or a block device" \
		sh -c "cat sparse.raw | \"\$SQCOW2\" >out.qcow2"
'

test_expect_success '--map round-trips through a pipe' '
	"$SQCOW2" --map sparse.raw >map.ranges &&
	head -n 1 map.ranges | grep -q "^# data ranges of sparse.raw, 1073741824 bytes" &&
	test_eq "$(grep -vc "^#" map.ranges)" 4 &&
	cat sparse.raw | "$SQCOW2" -s "$(file_size sparse.raw)" -r map.ranges >map.qcow2 &&
	verify map.qcow2 sparse.raw &&
	cmp map.qcow2 sparse.qcow2
'

test_expect_success '--map reads stdin too' '
	"$SQCOW2" --map <sparse.raw >stdin.ranges &&
	sed 1d map.ranges >a && sed 1d stdin.ranges >b && test_cmp a b
'

test_expect_success '--map escapes a name that would break its comment line' '
	name=$(printf "new\nline\\\\.raw") &&
	cp sparse.raw "$name" &&
	"$SQCOW2" --map "$name" >escaped.ranges &&
	head -n 1 escaped.ranges >first &&
	cat >want <<-\EOF &&
	# data ranges of new\012line\134.raw, 1073741824 bytes: OFFSET LENGTH
	EOF
	test_cmp want first &&
	cat sparse.raw | "$SQCOW2" -s 1G -r escaped.ranges >escaped.qcow2 &&
	cmp escaped.qcow2 map.qcow2
'

test_expect_success '--map and --print-size into a closed pipe: exit 1, not SIGPIPE' '
	{ wait_for test -e gone && save_status status "$SQCOW2" --map sparse.raw 2>err; } |
		{ exec <&- && : >gone; } &&
	test_eq "$(cat status)" 1 &&
	echo "sqcow2: stdout: Broken pipe" >want && test_cmp want err &&
	rm gone &&
	{ wait_for test -e gone && save_status status "$SQCOW2" --print-size <sparse.raw 2>err; } |
		{ exec <&- && : >gone; } &&
	test_eq "$(cat status)" 1 && test_cmp want err
'

test_expect_success '--map refuses a pipe and a missing file' '
	test_fails_with 2 "sqcow2: --map needs a file or a block device, and stdin is neither" \
		sh -c "cat sparse.raw | \"\$SQCOW2\" --map" &&
	test_fails_with 1 "sqcow2: nope.raw: No such file or directory" "$SQCOW2" --map nope.raw
'

if [ "$HAVE_QEMU" = 1 ]; then
test_expect_success 'qemu-img map --output=json is a range file' '
	qemu-img map -f raw --output=json sparse.raw >map.json &&
	grep -q "\"data\": true" map.json &&
	cat sparse.raw | "$SQCOW2" -s 1G -r map.json >json.qcow2 &&
	verify json.qcow2 sparse.raw
'

test_expect_success 'qemu-img map of a qcow2 image gives its guest ranges' '
	qemu-img map -f qcow2 --output=json sparse.qcow2 >qmap.json &&
	cat sparse.raw | "$SQCOW2" -s 1G -r qmap.json >qjson.qcow2 &&
	verify qjson.qcow2 sparse.raw && cmp qjson.qcow2 sparse.qcow2
'
else
	test_skip_missing 'qemu-img map --output=json is a range file' 'qemu-img not found'
	test_skip_missing 'qemu-img map of a qcow2 image gives its guest ranges' 'qemu-img not found'
fi

test_expect_success 'a JSON layout [{"offset": N, "length": N}] is a range file' '
	printf "[{\"offset\": 0, \"length\": 5000},\n {\"offset\": 70000, \"length\": 10},\n" >layout.json &&
	printf " {\"offset\": 536800000, \"length\": 200000}, {\"offset\": 1073741000, \"length\": 824}]\n" >>layout.json &&
	cat sparse.raw | "$SQCOW2" -s 1G -r layout.json >layout.qcow2 &&
	verify layout.qcow2 sparse.raw && cmp layout.qcow2 map.qcow2
'

test_expect_success 'bad JSON names the line' '
	printf "[{\"start\": 0, \"length\": 5000, \"data\": true},\n{\"start\": 5000, \"length\": 1, \"data\": maybe}]\n" >bad.json &&
	test_fails_with 1 "sqcow2: bad.json line 2: expected true or false" \
		"$SQCOW2" -s 1G -r bad.json --print-size &&
	printf "\n[{\"start\": 0, \"length\": 5000, \"data\": true}\n\n" >open.json &&
	test_fails_with 1 - \
		"$SQCOW2" -s 1G -r open.json --print-size <<-EOF &&
	sqcow2: open.json line 4: expected ${SQ},${SQ} or ${SQ}]${SQ}
	EOF
	printf "[{\"start\": 0, \"data\": true}]\n" >nolen.json &&
	test_fails_with 1 "sqcow2: nolen.json line 1: entry without \"length\"" \
		"$SQCOW2" -s 1G -r nolen.json --print-size &&
	printf "[{\"start\": -1, \"length\": 1, \"data\": true}]\n" >neg.json &&
	test_fails_with 1 "sqcow2: neg.json line 1: expected a non-negative integer" \
		"$SQCOW2" -s 1G -r neg.json --print-size &&
	printf "[{\"start\": 0, \"length\": 2147483648, \"data\": true}]\n" >big.json &&
	test_fails_with 1 "sqcow2: big.json line 1: range ends beyond --size" \
		"$SQCOW2" -s 1G -r big.json --print-size &&
	printf "[{\"start\": 0, \"length\": 1, \"data\": true}] x\n" >junk.json &&
	test_fails_with 1 "sqcow2: junk.json line 1: junk after JSON" \
		"$SQCOW2" -s 1G -r junk.json --print-size &&
	printf "[{\"length\": 1}]\n" >what.json &&
	test_fails_with 1 "sqcow2: what.json line 1: entry without \"start\" or \"offset\"" \
		"$SQCOW2" -s 1G -r what.json --print-size &&
	printf "[{\"start\": 0, \"length\": 1, \"data\": true, \"x\": {}}]\n" >nest.json &&
	test_fails_with 1 "sqcow2: nest.json line 1: unexpected nested JSON" \
		"$SQCOW2" -s 1G -r nest.json --print-size
'

if command -v nbdkit >/dev/null 2>&1 && command -v nbdinfo >/dev/null 2>&1; then
test_expect_success 'nbdinfo --map is a range file' '
	nbdkit -U - file sparse.raw --run "nbdinfo --map \"\$uri\"" >nbd.map &&
	grep -q " data$" nbd.map && grep -q " hole,zero$" nbd.map &&
	cat sparse.raw | "$SQCOW2" -s 1G -r nbd.map >nbd.qcow2 &&
	verify nbd.qcow2 sparse.raw && cmp nbd.qcow2 sparse.qcow2
'
elif [ "${CI:-}" = true ]; then
	echo "Bail out! nbdkit and nbdinfo are missing and CI=true (.ci/run installs them)"
	exit 1
else
	test_skip_missing 'nbdinfo --map is a range file' 'nbdkit or nbdinfo not found (Debian: nbdkit libnbd-bin)'
fi

test_expect_success 'bad nbdinfo lines name the line' '
	printf "0 65536 0 data\n65536 65536 x hole\n" >bad.map &&
	test_fails_with 1 "sqcow2: bad.map line 2: bad nbdinfo type" \
		"$SQCOW2" -s 1G -r bad.map --print-size &&
	printf "0 65536 0 data\n65536 65536 3\n" >nodesc.map &&
	test_fails_with 1 "sqcow2: nodesc.map line 2: expected nbdinfo description" \
		"$SQCOW2" -s 1G -r nodesc.map --print-size
'

# A loop device needs root and /dev/loop-control; where it cannot be had,
# the test says so.
test_expect_success 'setup: a small disk, and a device to write an image to' '
	make_raw small.raw 3145728 && put_data small.raw 100000 5000 &&
	make_raw target.raw 8M
'

if loop=$(losetup -f --show small.raw 2>/dev/null); then
test_expect_success 'a block device on stdin gives its size (BLKGETSIZE64)' '
	"$SQCOW2" <"$loop" >loop.qcow2 &&
	verify loop.qcow2 small.raw &&
	"$SQCOW2" --map "$loop" >loop.ranges &&
	head -n 1 loop.ranges | grep -q ", 3145728 bytes"
'

test_expect_success 'the same block device in and out is refused, the device untouched' '
	cp small.raw before.raw &&
	test_fails_with 1 "sqcow2: stdin: input file is output file" \
		sh -c "\"\$SQCOW2\" -o $loop <$loop" &&
	test_fails_with 1 "sqcow2: stdin: input file is output file" \
		sh -c "\"\$SQCOW2\" <$loop >$loop" &&
	cmp small.raw before.raw
'
	losetup -d "$loop"
else
	test_skip_missing 'a block device on stdin gives its size (BLKGETSIZE64)' 'no loop device here'
	test_skip_missing 'the same block device in and out is refused, the device untouched' 'no loop device here'
fi

if loop=$(losetup -f --show target.raw 2>/dev/null); then
test_expect_success 'a run killed while writing to a block device leaves no image there' '
	"$SQCOW2" -s 3145728 <small.raw >$loop && "$READBACK" check "$loop" &&
	mkfifo dev.fifo && run_bg feeder feed small.raw 1048576 dev.fifo &&
	run_bg pid "$SQCOW2" -s 3145728 <dev.fifo >$loop &&
	wait_for test -e dev.fifo.fed && kill -TERM $pid &&
	test_expect_code 143 wait $pid && kill $feeder &&
	! "$READBACK" check "$loop" 2>/dev/null &&
	{ [ "$HAVE_QEMU" = 0 ] || ! qemu-img check -q -f qcow2 "$loop" 2>/dev/null; } &&
	"$SQCOW2" -s 3145728 <small.raw >$loop && "$READBACK" compare "$loop" small.raw
'
	losetup -d "$loop"
else
	test_skip_missing 'a run killed while writing to a block device leaves no image there' 'no loop device here'
fi

test_done

#!/bin/sh
# Range files as other tools write them, and as a guess from their first
# line misread them: each read wrong drops changes from an overlay
# without a word, since -b checks nothing outside the ranges.
README=$(cd "$(dirname "$0")/.." && pwd)/README
. "$(dirname "$0")/lib.sh"

# verify_overlay IMAGE RAW: a valid overlay whose chain reads as RAW.
verify_overlay() {
	"$READBACK" check "$1" || return 1
	[ "$HAVE_QEMU" = 1 ] || return 0
	qemu-img check -q "$1" || { echo "qemu-img check failed: $1"; return 1; }
	qemu-img compare -q "$1" "$2" || { echo "qemu-img compare: $1 differs from $2"; return 1; }
}

# qemu-nbd serves the maps, nbdinfo and nbdcopy read them (Debian:
# qemu-utils, libnbd-bin).  Without them their tests are skipped, except
# under CI=true, where a missing tool is a failure as qemu-img's is.
if [ "$HAVE_QEMU" = 1 ] && command -v qemu-nbd >/dev/null 2>&1 &&
    command -v qemu-io >/dev/null 2>&1 && command -v nbdinfo >/dev/null 2>&1 &&
    command -v nbdcopy >/dev/null 2>&1; then
	HAVE_NBD=1
elif [ "${CI:-}" = true ]; then
	echo "Bail out! qemu-nbd, qemu-io, nbdinfo or nbdcopy is missing and CI=true" \
		"(.ci/run installs qemu-utils and libnbd-bin)"
	exit 1
else
	HAVE_NBD=0
	NO_NBD="qemu-nbd, qemu-io, nbdinfo or nbdcopy not found (Debian: qemu-utils libnbd-bin)"
fi

# nbdkit serves a raw file to nbdinfo, as users map one (Debian: nbdkit).
if command -v nbdkit >/dev/null 2>&1 && command -v nbdinfo >/dev/null 2>&1; then
	HAVE_NBDKIT=1
elif [ "${CI:-}" = true ]; then
	echo "Bail out! nbdkit or nbdinfo is missing and CI=true (.ci/run installs them)"
	exit 1
else
	HAVE_NBDKIT=0
	NO_NBDKIT="nbdkit or nbdinfo not found (Debian: nbdkit libnbd-bin)"
fi

# serve NAME QEMU-NBD-ARGS...: export read-only on the socket NAME.sock
# (qemu-nbd wants its path absolute) until stop NAME.
serve() {
	name=$1
	shift
	qemu-nbd -r -t -k "$PWD/$name.sock" --pid-file="$name.pid" --fork "$@"
}

# The URI of what serve NAME exports.
nbd_uri() {
	echo "nbd+unix:///?socket=$PWD/$1.sock"
}

# Whether process PID still runs (a zombie no longer holds its image).
running() {
	state=$(sed -n "s/^[0-9]* (.*) \(.\) .*/\1/p" "/proc/$1/stat" 2>/dev/null)
	[ -n "$state" ] && [ "$state" != Z ]
}

# stop NAME: end the qemu-nbd that serve NAME (or a command with
# --pid-file=NAME.pid) started, if it still runs, and wait until it has
# let go of its image.  Each test that serves stops from an EXIT trap, so
# that a failing test leaves no server behind.
stop() {
	pid=$(cat "$1.pid" 2>/dev/null) || return 0
	rm -f "$1.pid"
	[ "$(cat "/proc/$pid/comm" 2>/dev/null)" = qemu-nbd ] || return 0
	kill "$pid" 2>/dev/null
	tries=0
	while running "$pid" && [ $tries -lt 100 ]; do
		sleep 0.1
		tries=$((tries + 1))
	done
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

# "> changed.map" from a map command that failed leaves an empty file: over
# a backing file it would make an overlay of no change, exit 0.
test_expect_success 'an empty range file is refused under -b, a comment means no change' '
	: >empty.ranges && printf "\n \r\n\t\n" >blank.ranges &&
	for f in empty blank; do
		test_fails_with 1 "sqcow2: $f.ranges: empty: over a backing file it would store no change (for none, give a file of one comment line)" \
			sh -c "\"\$SQCOW2\" -r $f.ranges -b zeros.qcow2 -F qcow2 <two.raw >$f.qcow2" || exit 1
	done &&
	"$SQCOW2" -r empty.ranges -s 1M --print-size >/dev/null &&
	printf "# no change\n" >none.ranges &&
	"$SQCOW2" -r none.ranges -b zeros.qcow2 -F qcow2 <zeros.raw >none.qcow2 &&
	verify_overlay none.qcow2 zeros.raw &&
	test_eq "$(info none.qcow2 data_clusters)" 0
'

# sqcow2 --map says where tuesday.raw holds data; a block Tuesday punched
# out is in no range of it, and over Monday's image would show Monday.
test_expect_success 'a map of sqcow2 --map or -d --map is refused under -b, read without' '
	cp two.raw tuesday.raw && fallocate -p -o 65536 -l 65536 tuesday.raw &&
	"$SQCOW2" two.raw >monday.qcow2 &&
	"$SQCOW2" --map tuesday.raw >map.ranges &&
	"$SQCOW2" tuesday.raw | "$SQCOW2" -d --map >d-map.ranges &&
	for f in map d-map; do
		test_fails_with 1 "sqcow2: $f.ranges line 1: a map of sqcow2 --map says where data is, not what changed: over -b give the changed blocks" \
			sh -c "\"\$SQCOW2\" -r $f.ranges -b monday.qcow2 -F qcow2 tuesday.raw >$f.qcow2" &&
		"$SQCOW2" -r $f.ranges tuesday.raw >$f.qcow2 && verify $f.qcow2 tuesday.raw || exit 1
	done
'

test_expect_success 'a line of the other format is an error naming it' '
	printf "65536 65536\n262144 65536 0 data\n" >mixed.ranges &&
	test_fails_with 1 "sqcow2: mixed.ranges line 2: nbdinfo line in a plain range file" \
		"$SQCOW2" -s 1M -r mixed.ranges --print-size &&
	printf "0 65536 3 hole,zero\n65536 65536 0 data\n262144 65536\n" >mixed.map &&
	test_fails_with 1 "sqcow2: mixed.map line 3: plain line in an nbdinfo map" \
		"$SQCOW2" -s 1M -r mixed.map --print-size
'

# A dirty bitmap and an allocation depth map, read from qemu-nbd.  Data is
# what changed: "dirty"; "local" to the top of a chain for an overlay,
# anything allocated for a whole image.
if [ "$HAVE_NBD" = 1 ]; then
test_expect_success 'a dirty bitmap: the dirty blocks are what the overlay stores' '
	test_when_finished "stop vm" &&
	qemu-img create -q -f qcow2 vm.qcow2 4M &&
	qemu-io -c "write -P 0x11 0 64k" -c "write -P 0x12 1M 128k" vm.qcow2 >/dev/null &&
	qemu-img bitmap --add vm.qcow2 b0 &&
	qemu-img convert -O raw vm.qcow2 before.raw &&
	"$SQCOW2" <before.raw >base.qcow2 &&
	qemu-io -c "write -P 0x5a 512k 64k" -c "write -P 0x5b 1M 4k" \
		-c "write -z 1088k 64k" vm.qcow2 >/dev/null &&
	qemu-img convert -O raw vm.qcow2 current.raw &&
	serve vm -B b0 -f qcow2 vm.qcow2 &&
	nbdinfo --map=qemu:dirty-bitmap:b0 "$(nbd_uri vm)" >dirty.map &&
	cat dirty.map &&
	grep -q "  dirty$" dirty.map && grep -q "  clean$" dirty.map &&
	"$SQCOW2" -r dirty.map -b base.qcow2 -F qcow2 <current.raw >inc.qcow2 &&
	verify_overlay inc.qcow2 current.raw &&
	# Two clusters of new data; the one written zeros hides the old data
	# as a zero cluster, which costs nothing.
	test_eq "$(info inc.qcow2 data_clusters)" 2 &&
	test_eq "$(info inc.qcow2 zero_clusters)" 1
'

test_expect_success 'without -b, the clean blocks outside the ranges are checked' '
	test_fails_with 1 "sqcow2: non-zero byte at input offset 0, outside the ranges" \
		sh -c "\"\$SQCOW2\" -r dirty.map <current.raw >whole.qcow2"
'

# A map cut short (head, a killed nbdinfo) lacks the changes past its
# end: refused, naming its last line, before a byte of image is written.
test_expect_success 'a dirty bitmap map cut short is refused, and no image is written' '
	head -n 2 dirty.map >cut.map &&
	test "$(wc -l <dirty.map)" -gt 2 && grep -q "  dirty$" cut.map &&
	test_fails_with 1 "sqcow2: cut.map line 2: the map stops before the end of the disk" \
		sh -c "\"\$SQCOW2\" -r cut.map -b base.qcow2 -F qcow2 <current.raw >cut.qcow2" &&
	test_eq "$(file_size cut.qcow2)" 0 &&
	test_fails_with 1 "sqcow2: cut.map line 2: the map stops before the end of the disk" \
		sh -c "cat current.raw | \"\$SQCOW2\" -s 4M -r cut.map -b base.qcow2 -F qcow2 \
			-o cut-o.qcow2" &&
	test ! -e cut-o.qcow2
'

test_expect_success 'allocation depth: local for an overlay, all that is allocated for an image' '
	test_when_finished "stop top" &&
	qemu-img create -q -f qcow2 lower.qcow2 4M &&
	qemu-io -c "write -P 0x21 0 64k" -c "write -P 0x22 1M 128k" lower.qcow2 >/dev/null &&
	qemu-img create -q -f qcow2 -b lower.qcow2 -F qcow2 snap.qcow2 &&
	qemu-io -c "write -P 0x23 2M 64k" snap.qcow2 >/dev/null &&
	qemu-img convert -O raw snap.qcow2 snap.raw &&
	"$SQCOW2" <snap.raw >snap-full.qcow2 &&
	qemu-img create -q -f qcow2 -b snap.qcow2 -F qcow2 top.qcow2 &&
	qemu-io -c "write -P 0x5a 512k 64k" -c "write -z 1M 64k" top.qcow2 >/dev/null &&
	qemu-img convert -O raw top.qcow2 top.raw &&
	serve top -A -f qcow2 top.qcow2 &&
	nbdinfo --map=qemu:allocation-depth "$(nbd_uri top)" >depth.map &&
	cat depth.map &&
	grep -q "  local$" depth.map && grep -q "  backing depth 2$" depth.map &&
	grep -q "  backing depth 3$" depth.map && grep -q "  absent$" depth.map &&
	"$SQCOW2" -r depth.map -b snap-full.qcow2 -F qcow2 <top.raw >top-inc.qcow2 &&
	verify_overlay top-inc.qcow2 top.raw &&
	# The cluster written as zeros hides the lower data as a zero cluster
	# over a backing file, and is dropped from a whole image.
	test_eq "$(info top-inc.qcow2 data_clusters)" 1 &&
	test_eq "$(info top-inc.qcow2 zero_clusters)" 1 &&
	"$SQCOW2" -r depth.map <top.raw >top-full.qcow2 &&
	verify top-full.qcow2 top.raw &&
	test_eq "$(info top-full.qcow2 data_clusters)" 4
'

# bytes_read VERBOSE_OUTPUT: what sqcow2 -v said it read.
bytes_read() {
	sed -n "s/^sqcow2: read \([0-9]*\) bytes.*/\1/p" "$1"
}

test_expect_success 'nbdinfo --map --json: holes are not data' '
	test_when_finished "stop big" &&
	make_raw big.raw 64M && put_data big.raw 40000000 4096 &&
	serve big -f raw big.raw &&
	nbdinfo --map --json "$(nbd_uri big)" >big.json &&
	cat big.json &&
	grep -q "\"description\": \"hole,zero\"" big.json &&
	"$SQCOW2" -v -r big.json <big.raw >big.qcow2 2>stats &&
	verify big.qcow2 big.raw &&
	test_eq "$(info big.qcow2 data_clusters)" 1 &&
	test "$(file_size big.qcow2)" -lt 1048576 &&
	test "$(bytes_read stats)" -le 131072
'

test_expect_success 'nbdinfo --map --json of a dirty bitmap and of allocation depth' '
	test_when_finished "stop vm; stop top" &&
	serve vm -B b0 -f qcow2 vm.qcow2 &&
	nbdinfo --map=qemu:dirty-bitmap:b0 --json "$(nbd_uri vm)" >dirty.json &&
	grep -q "\"description\": \"dirty\"" dirty.json &&
	"$SQCOW2" -r dirty.json -b base.qcow2 -F qcow2 <current.raw >inc-json.qcow2 &&
	cmp inc-json.qcow2 inc.qcow2 &&
	serve top -A -f qcow2 top.qcow2 &&
	nbdinfo --map=qemu:allocation-depth --json "$(nbd_uri top)" >depth.json &&
	grep -q "\"description\": \"backing depth 2\"" depth.json &&
	"$SQCOW2" -r depth.json -b snap-full.qcow2 -F qcow2 <top.raw >top-inc-json.qcow2 &&
	cmp top-inc-json.qcow2 top-inc.qcow2 &&
	"$SQCOW2" -r depth.json <top.raw >top-full-json.qcow2 &&
	cmp top-full-json.qcow2 top-full.qcow2
'
else
	test_skip_missing 'a dirty bitmap: the dirty blocks are what the overlay stores' "$NO_NBD"
	test_skip_missing 'without -b, the clean blocks outside the ranges are checked' "$NO_NBD"
	test_skip_missing 'a dirty bitmap map cut short is refused, and no image is written' "$NO_NBD"
	test_skip_missing 'allocation depth: local for an overlay, all that is allocated for an image' \
		"$NO_NBD"
	test_skip_missing 'nbdinfo --map --json: holes are not data' "$NO_NBD"
	test_skip_missing 'nbdinfo --map --json of a dirty bitmap and of allocation depth' "$NO_NBD"
fi

test_expect_success 'an unknown description is an error naming its line' '
	printf "0 65536 1 dirty\n65536 65536 2 dirtier\n" >unknown.map &&
	test_fails_with 1 "sqcow2: unknown.map line 2: unknown nbdinfo description" \
		"$SQCOW2" -s 1M -r unknown.map --print-size
'

# The README's incremental backup with a dirty bitmap, as printed there:
# a unix socket stands in for the host that serves the disk.
monday='qemu-img bitmap --add vm.qcow2 b0
qemu-img convert -O raw vm.qcow2 monday.raw
sqcow2 < monday.raw > monday.qcow2'
tuesday='qemu-nbd -r -t -B b0 -f qcow2 -k "$PWD/vm.sock" --pid-file=vm.pid --fork vm.qcow2
uri="nbd+unix:///?socket=$PWD/vm.sock"
nbdinfo --map=qemu:dirty-bitmap:b0 "$uri" > changed.map
size=$(nbdinfo --size "$uri")
nbdcopy "$uri" - |
    sqcow2 -s "$size" -r changed.map -b monday.qcow2 -F qcow2 > tuesday.qcow2
kill "$(cat vm.pid)"
qemu-img compare tuesday.qcow2 vm.qcow2     # identical'
clear='qemu-img bitmap --clear vm.qcow2 b0'

test_expect_success 'the README prints the commands of its dirty-bitmap backup as run here' '
	printf "%s\n" "$monday" "$tuesday" | while IFS= read -r line; do
		grep -qxF "    $line" "$README" || { echo "not in the README: $line"; exit 1; }
	done &&
	grep -qF "\`$clear\`" "$README"
'

if [ "$HAVE_NBD" = 1 ]; then
test_expect_success 'the README dirty-bitmap backup, run as printed' '
	mkdir readme && cd readme &&
	mkdir bin && ln -s "$SQCOW2" bin/sqcow2 && PATH=$PWD/bin:$PATH &&
	test_when_finished "stop vm; stop again" &&
	qemu-img create -q -f qcow2 vm.qcow2 64M &&
	qemu-io -c "write -P 0x11 0 1M" -c "write -P 0x12 10M 64k" vm.qcow2 >/dev/null &&
	sh -ec "$monday" &&
	qemu-io -c "write -P 0x5a 5M 64k" -c "write -z 10M 4k" -c "write -P 0x5b 63M 1M" \
		vm.qcow2 >/dev/null &&
	sh -ec "$tuesday" >compare.out &&
	cat compare.out && grep -q "^Images are identical" compare.out &&
	test_eq "$(info tuesday.qcow2 data_clusters)" 18 &&
	test_eq "$(info tuesday.qcow2 backing_file)" monday.qcow2 &&
	stop vm && eval "$clear" &&
	serve again -B b0 -f qcow2 vm.qcow2 &&
	nbdinfo --map=qemu:dirty-bitmap:b0 "$(nbd_uri again)" >cleared.map &&
	! grep dirty cleared.map
'
else
	test_skip_missing 'the README dirty-bitmap backup, run as printed' "$NO_NBD"
fi

# QEMU maps a disk rounded up to whole 512-byte sectors.  This one is
# 1000000 bytes, with data in its last, partial sector.
rm -f disk.raw && truncate -s 1000000 disk.raw &&
put_data disk.raw 70000 100 && put_data disk.raw 999990 10

if [ "$HAVE_QEMU" = 1 ]; then
test_expect_success 'qemu-img map of a disk not in whole sectors is cut at its size' '
	qemu-img map --output=json -f raw disk.raw > disk.json &&
	grep -q "\"start\": 1000000, \"length\": 448" disk.json &&
	"$SQCOW2" -r disk.json < disk.raw >disk.qcow2 &&
	verify disk.qcow2 disk.raw &&
	cat disk.raw | "$SQCOW2" -s 1000000 -r disk.json >pipe.qcow2 &&
	cmp pipe.qcow2 disk.qcow2
'

test_expect_success 'past the rounded size is still an error' '
	sed "s/\"length\": 448/\"length\": 449/" disk.json >past.json &&
	test_fails_with 1 "sqcow2: past.json line 5: range ends beyond --size" \
		"$SQCOW2" -s 1000000 -r past.json --print-size &&
	test_fails_with 1 "sqcow2: disk.json line 4: offset beyond --size" \
		"$SQCOW2" -s 999000 -r disk.json --print-size
'

test_expect_success 'qemu-img map of an empty disk, one empty extent, reads as none' '
	: >empty.raw && qemu-img map --output=json -f raw empty.raw >empty.json &&
	grep -q "\"start\": 0, \"length\": 0" empty.json &&
	"$SQCOW2" -r empty.json empty.raw >empty.qcow2 && verify empty.qcow2 empty.raw &&
	test_fails_with 1 "sqcow2: empty.json line 1: the map stops before the end of the disk" \
		"$SQCOW2" -s 1M -r empty.json --print-size
'
else
	test_skip_missing 'qemu-img map of a disk not in whole sectors is cut at its size' 'qemu-img not found'
	test_skip_missing 'past the rounded size is still an error' 'qemu-img not found'
	test_skip_missing 'qemu-img map of an empty disk, one empty extent, reads as none' 'qemu-img not found'
fi

test_expect_success 'a plain range file must end within the size' '
	printf "69632 4096\n999424 1024\n" >disk.ranges &&
	test_fails_with 1 "sqcow2: disk.ranges line 2: range ends beyond --size" \
		"$SQCOW2" -s 1000000 -r disk.ranges --print-size
'

if [ "$HAVE_NBD" = 1 ]; then
test_expect_success 'nbdinfo --map of qemu-nbd serving that disk' '
	test_when_finished "stop disk" &&
	serve disk -f raw disk.raw &&
	test_eq "$(nbdinfo --size "$(nbd_uri disk)")" 1000448 &&
	nbdinfo --map "$(nbd_uri disk)" >disk.map &&
	grep -q "^ *1000000 *448 *3  hole,zero$" disk.map &&
	"$SQCOW2" -r disk.map <disk.raw >map.qcow2 &&
	cmp map.qcow2 disk.qcow2
'
else
	test_skip_missing 'nbdinfo --map of qemu-nbd serving that disk' "$NO_NBD"
fi

# An allocation map over -b: the block that became zeros is a hole in it,
# so an overlay of its data would show the backing file's old bytes
# there.  base.raw has data at 64 KiB and 256 KiB; cur.raw changes 256
# KiB, and 64 KiB is a hole, as a guest's discard leaves it.
ALLOC_MSG="an allocation map says where data is, not what changed: over -b give \
the changed blocks (nbdinfo --map=qemu:dirty-bitmap:NAME or --map=qemu:allocation-depth)"
make_raw base.raw 1M && put_data base.raw 65536 65536 && put_data base.raw 262144 65536 &&
"$SQCOW2" <base.raw >base.qcow2 &&
make_raw cur.raw 1M && put_data cur.raw 262144 65536

if [ "$HAVE_NBDKIT" = 1 ]; then
test_expect_success 'over -b, an allocation map from nbdinfo --map is refused' '
	nbdinfo --map -- [ nbdkit file cur.raw ] >a.map &&
	cat a.map && grep -q "  data$" a.map && grep -q "  hole,zero$" a.map &&
	test_fails_with 1 "sqcow2: a.map line 1: $ALLOC_MSG" \
		sh -c "\"\$SQCOW2\" -r a.map -b base.qcow2 -F qcow2 <cur.raw >a.qcow2" &&
	test_eq "$(file_size a.qcow2)" 0 &&
	"$SQCOW2" -r a.map <cur.raw >a-full.qcow2 && verify a-full.qcow2 cur.raw
'

test_expect_success 'over -b, an allocation map from nbdinfo --map --json is refused' '
	nbdinfo --map --json -- [ nbdkit file cur.raw ] >a.json &&
	cat a.json && grep -q "\"description\": \"data\"" a.json &&
	test_fails_with 1 "sqcow2: a.json line 2: $ALLOC_MSG" \
		sh -c "\"\$SQCOW2\" -r a.json -b base.qcow2 -F qcow2 <cur.raw >a-json.qcow2" &&
	"$SQCOW2" -r a.json <cur.raw >a-json-full.qcow2 && cmp a-json-full.qcow2 a-full.qcow2
'
else
	test_skip_missing 'over -b, an allocation map from nbdinfo --map is refused' "$NO_NBDKIT"
	test_skip_missing 'over -b, an allocation map from nbdinfo --map --json is refused' "$NO_NBDKIT"
fi

if [ "$HAVE_QEMU" = 1 ]; then
test_expect_success 'over -b, qemu-img map is refused; its data as ranges misses the zeros' '
	qemu-img map --output=json -f raw cur.raw >q.json &&
	cat q.json && grep -q "\"data\": true" q.json &&
	test_fails_with 1 "sqcow2: q.json line 1: $ALLOC_MSG" \
		sh -c "\"\$SQCOW2\" -r q.json -b base.qcow2 -F qcow2 <cur.raw >q.qcow2" &&
	"$SQCOW2" -r q.json <cur.raw >q-full.qcow2 && verify q-full.qcow2 cur.raw &&
	sed -n "s/.*\"start\": \([0-9]*\), \"length\": \([0-9]*\),.*\"data\": true.*/\1 \2/p" \
		q.json >q-data.ranges &&
	test_eq "$(cat q-data.ranges)" "262144 65536" &&
	"$SQCOW2" -r q-data.ranges -b base.qcow2 -F qcow2 <cur.raw >q-data.qcow2 &&
	! qemu-img compare -q q-data.qcow2 cur.raw
'
else
	test_skip_missing 'over -b, qemu-img map is refused; its data as ranges misses the zeros' \
		'qemu-img not found'
fi

test_expect_success 'over -b, a plain range file and an offset/length list are taken' '
	printf "# changed since base.raw\n65536 65536\n262144 65536\n" >changed.ranges &&
	"$SQCOW2" -r changed.ranges -b base.qcow2 -F qcow2 <cur.raw >inc-plain.qcow2 &&
	verify_overlay inc-plain.qcow2 cur.raw &&
	# The cluster now of zeros is a zero cluster: a file is sparsified.
	test_eq $(( $(info inc-plain.qcow2 data_clusters) + $(info inc-plain.qcow2 zero_clusters) )) 2 &&
	printf "[{\"offset\": 65536, \"length\": 65536},\n {\"offset\": 262144, \"length\": 65536}]\n" \
		>changed.json &&
	"$SQCOW2" -r changed.json -b base.qcow2 -F qcow2 <cur.raw >inc-json.qcow2 &&
	cmp inc-json.qcow2 inc-plain.qcow2
'

test_done

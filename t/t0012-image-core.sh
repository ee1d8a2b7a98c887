#!/bin/sh
# The core of sqcow2 -d (decoder.h), end to end: t/bin/imgcat drives it over
# real images made by qemu-img, qemu-io and sqcow2, forward as from a pipe
# and by offset as from a file, and its disk must be what
# qemu-img convert -f qcow2 -O raw makes of the same image.
. "$(dirname "$0")/lib.sh"

top=$OLDPWD
bin=$(dirname "$SQCOW2")
[ -x "$bin/imgcat" ] || bin=$top/t/bin
IMGCAT=$bin/imgcat
ORDER="save the image to a file first"

# The image decodes to RAW by offset, forward from a file, and from a pipe.
decodes_to() {
	"$IMGCAT" -s "$1" >got-s.raw && cmp "$2" got-s.raw &&
	"$IMGCAT" <"$1" >got-f.raw && cmp "$2" got-f.raw &&
	cat "$1" | "$IMGCAT" | cmp "$2" -
}

# The image decodes to what qemu-img makes of it, both ways.
decodes() {
	qemu-img convert -f qcow2 -O raw "$1" want.raw && decodes_to "$1" want.raw
}

# From a file it decodes as qemu-img does; from a pipe it is out of order.
decodes_from_file_only() {
	qemu-img convert -f qcow2 -O raw "$1" want.raw &&
	"$IMGCAT" -s "$1" >got-s.raw && cmp want.raw got-s.raw &&
	! cat "$1" | "$IMGCAT" >/dev/null 2>err && grep "$ORDER" err
}

# Refused both ways, exit 1, with the message's beginning.
refused() {
	test_expect_code 1 "$IMGCAT" -s "$1" >/dev/null 2>err-s && grep "^imgcat: $2" err-s &&
	cat "$1" | test_expect_code 1 "$IMGCAT" >/dev/null 2>err-f && grep "^imgcat: $2" err-f
}

# The big-endian number of BYTES bytes at OFFSET of FILE (below 2^53).
peek() {
	od -An -tu1 -j "$2" -N "$3" "$1" |
		awk '{ for (i = 1; i <= NF; i++) v = v * 256 + $i } END { printf "%.0f\n", v }'
}

# Write VALUE, big-endian, as BYTES bytes at OFFSET of FILE.
poke() {
	s= i=0
	while [ $i -lt "$3" ]; do
		s="$s\\$(printf %03o $(( ($4 >> (8 * ($3 - 1 - i))) & 255 )))"
		i=$((i + 1))
	done
	printf "$s" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

test_expect_success 'the unit tests of the decoder core pass' '
	"$bin/unit-image" >unit.tap 2>&1 && ! grep "^not ok" unit.tap &&
	sed -n "s/^1\.\./# unit-image: /p" unit.tap >"$TRASH/unit-count"
'
sed "s/$/ tests/" "$TRASH/unit-count" 2>/dev/null

# A disk whose size is a multiple of neither 512 nor any cluster size,
# with data across 2 MiB boundaries, 10 MiB in one piece (so that the
# refcount table of 512-byte clusters outgrows its cluster and moves
# behind data), and data in its last bytes.
size=$((40 * 1048576 + 1234))
make_raw disk.raw $size && put_data disk.raw 0 70000 &&
put_data disk.raw $((2097152 - 5000)) 10000 && put_data disk.raw 9000000 10485760 &&
put_data disk.raw $((33554432 - 1)) 2 && put_data disk.raw $((size - 1000)) 1000 &&
cp disk.raw disk512.raw && truncate -s $(( (size + 511) / 512 * 512 )) disk512.raw

if [ "$HAVE_QEMU" = 1 ]; then
for compat in 0.10 1.1; do
	test_expect_success "qemu-img convert -O qcow2, compat $compat, every cluster size" '
		for cs in 512 4k 64k 2M; do
			qemu-img convert -f raw -O qcow2 -o compat=$compat,cluster_size=$cs \
				disk.raw c-$cs.qcow2 && decodes c-$cs.qcow2 || exit 1
		done
	'
done

test_expect_success 'qemu-img convert, 512-byte clusters: the refcount table is behind data' '
	qemu-img convert -f raw -O qcow2 -o cluster_size=512 disk.raw behind.qcow2 &&
	test "$(peek behind.qcow2 48 8)" -gt 1048576 && decodes behind.qcow2
'

test_expect_success 'qemu-img convert of a 1000-byte disk: the size rounds up to 512' '
	head -c 1000 /dev/urandom >tiny.raw &&
	qemu-img convert -f raw -O qcow2 tiny.raw tiny.qcow2 && decodes tiny.qcow2 &&
	test_eq "$(file_size got-s.raw)" 1024 && test_eq "$("$IMGCAT" -n tiny.qcow2)" 1024
'

test_expect_success 'a file that ends inside its last cluster reads zeros past its end' '
	qemu-img convert -f raw -O qcow2 tiny.raw short.qcow2 &&
	truncate -s $(( $(file_size short.qcow2) - 65536 + 700 )) short.qcow2 &&
	decodes short.qcow2 && cmp -n 700 tiny.raw got-s.raw &&
	test_eq "$(tail -c 324 got-s.raw | tr -d "\000" | wc -c)" 0
'

test_expect_success 'qemu-io writes out of order: the window reorders it from a pipe' '
	qemu-img create -q -f qcow2 rnd.qcow2 64M &&
	qemu-io -c "write -P 7 40M 100k" -c "write -P 8 1M 64k" -c "write -P 9 10M 3k" \
		-c "write -z 20M 128k" -c "write -P 3 30M 64k" -c "write -z 30M 64k" \
		-c "write -z -u 40M 64k" rnd.qcow2 >/dev/null &&
	decodes rnd.qcow2 &&
	cat rnd.qcow2 | "$IMGCAT" -v -w 65536 2>steps | cmp want.raw - &&
	grep "^imgcat: [0-9]* table, [0-9]* skip, 1 hold, " steps &&
	cat rnd.qcow2 | test_expect_code 1 "$IMGCAT" -w 32768 >/dev/null 2>err &&
	grep "^imgcat: image offset 393216: the reorder window (32768 bytes) is full of data that comes before its turn (the disk is out up to guest offset 1048576): decode to a file or a device rather than a pipe" err
'

test_expect_success 'qemu-io writes in guest order, zero clusters: from a pipe too' '
	qemu-img create -q -f qcow2 -o cluster_size=4k ord.qcow2 16M &&
	qemu-io -c "write -P 1 0 10k" -c "write -z 100k 8k" -c "write -P 2 1M 1M" \
		-c "write -z 1536k 4k" -c "write -P 3 15M 4k" ord.qcow2 >/dev/null &&
	decodes ord.qcow2
'

test_expect_success 'extended L2 entries: partial subclusters, in order and not' '
	for cs in 16k 64k 2M; do
		qemu-img create -q -f qcow2 -o extended_l2=on,cluster_size=$cs \
			ext-$cs.qcow2 32M &&
		qemu-io -c "write -P 1 4k 4k" -c "write -P 2 70k 2k" -c "write -z 200k 10k" \
			-c "write -P 3 1M 64k" -c "write -P 4 3M 1k" ext-$cs.qcow2 >/dev/null &&
		decodes ext-$cs.qcow2 &&
		qemu-io -c "write -P 5 2M 512" -c "write -z 4k 1k" ext-$cs.qcow2 >/dev/null &&
		qemu-img convert -f qcow2 -O raw ext-$cs.qcow2 want.raw &&
		"$IMGCAT" -s ext-$cs.qcow2 | cmp want.raw - || exit 1
	done
'

test_expect_success 'an internal snapshot is ignored: the active disk comes out' '
	cp ord.qcow2 snap.qcow2 && qemu-img snapshot -c first snap.qcow2 &&
	qemu-io -c "write -P 6 1M 4k" snap.qcow2 >/dev/null &&
	qemu-img convert -f qcow2 -O raw snap.qcow2 want.raw &&
	"$IMGCAT" -s snap.qcow2 | cmp want.raw -
'

test_expect_success 'the data ranges are what qemu-img map calls data' '
	"$IMGCAT" -m -s rnd.qcow2 >got.map && "$IMGCAT" -m ord.qcow2 >got-ord.map &&
	for f in rnd ord; do
		qemu-img map --output=json $f.qcow2 | awk -F "[:,]" "
			/\"data\": true/ { s = \$2 + 0; l = \$4 + 0
				if (n && s == e) { e += l; next }
				if (n) print b, e - b; b = s; e = s + l; n = 1 }
			END { if (n) print b, e - b }" >want-$f.map || exit 1
	done &&
	test_cmp want-rnd.map got.map && test_cmp want-ord.map got-ord.map
'
else
	test_skip_missing 'images made by qemu-img and qemu-io' 'qemu-img not found'
fi

test_expect_success "sqcow2's stream form decodes, forward and by offset" '
	for cs in 512 64k 2M; do
		"$SQCOW2" -c $cs <disk.raw >s-$cs.qcow2 && decodes_to s-$cs.qcow2 disk512.raw &&
		"$SQCOW2" -c $cs --compat 0.10 <disk.raw >s2-$cs.qcow2 &&
		decodes_to s2-$cs.qcow2 disk512.raw || exit 1
	done
'

test_expect_success "sqcow2 -o: its tables come first, nothing held, whatever the window" '
	for cs in 512 64k 2M; do
		"$SQCOW2" -c $cs -o o.qcow2 <disk.raw && "$IMGCAT" -s o.qcow2 | cmp disk512.raw - &&
		"$IMGCAT" -v <o.qcow2 2>steps | cmp disk512.raw - &&
		grep "^imgcat: [0-9]* table, [0-9]* skip, 0 hold, " steps &&
		"$IMGCAT" -w 0 <o.qcow2 | cmp disk512.raw - || exit 1
	done
'

test_expect_success 'a sparse sqcow2 image: the data ranges are the ranges given' '
	make_raw sparse.raw 100M && put_data sparse.raw 1048576 65536 &&
	put_data sparse.raw 5242880 131072 &&
	printf "1048576 65536\n5242880 131072\n" >sparse.ranges &&
	"$SQCOW2" -r sparse.ranges <sparse.raw >sparse.qcow2 &&
	"$IMGCAT" -m sparse.qcow2 >got.map && test_cmp sparse.ranges got.map &&
	decodes_to sparse.qcow2 sparse.raw
'

test_expect_success 'all data across L2 tables: one DATA step from the stream form' '
	head -c 64M /dev/zero | tr "\000" x >dense.raw &&
	"$SQCOW2" -c 4k <dense.raw >dense.qcow2 &&
	"$IMGCAT" -v dense.qcow2 2>steps | cmp dense.raw - &&
	grep "^imgcat: [0-9]* table, [0-9]* skip, 0 hold, 1 data, 0 compressed, 0 zeros steps" steps
'

# 8 TiB, the most a test can truncate to on ext4; the core's unit tests
# take 64 TiB.  sqcow2 reads a seekable stdin only in the ranges.
test_expect_success '8 TiB with 10 MiB of data: a few steps, a few KiB of memory' '
	truncate -s 8T huge.raw && put_data huge.raw 4398046511104 10485760 &&
	printf "0 4096\n4398046511104 10485760\n8796093022144 64\n" >huge.ranges &&
	"$SQCOW2" --no-sparsify -r huge.ranges <huge.raw >huge.qcow2 && rm huge.raw &&
	printf "0 65536\n4398046511104 10485760\n8796092956672 65536\n" >want.map &&
	for mode in -s ""; do
		"$IMGCAT" -v -m $mode huge.qcow2 >got.map 2>steps && test_cmp want.map got.map &&
		grep "^imgcat: [0-9]* table, [0-9]* skip, 0 hold, 3 data, 0 compressed, 2 zeros steps" steps &&
		test "$(sed -n "s/^imgcat: \([0-9]*\) table.*/\1/p" steps)" -le 8 &&
		test "$(sed -n "s/.*steps; \([0-9]*\) bytes of memory.*/\1/p" steps)" -lt 16384 ||
		exit 1
	done
'

if [ "$HAVE_QEMU" = 1 ]; then
test_expect_success 'compressed clusters, every cluster size: from a file and a pipe' '
	for cs in 512 4k 64k 2M; do
		qemu-img convert -f raw -O qcow2 -c -o cluster_size=$cs disk.raw comp.qcow2 &&
		decodes comp.qcow2 &&
		"$IMGCAT" -v -s comp.qcow2 2>steps >/dev/null &&
		grep "^imgcat: .* [1-9][0-9]* compressed, " steps || exit 1
	done
'

test_expect_success 'refused: a LUKS-encrypted image' '
	make_luks luks.qcow2 &&
	refused luks.qcow2 "encrypted image (crypt_method 2, LUKS)"
'

test_expect_success 'refused: an overlay of a backing file, naming it' '
	qemu-img create -q -f qcow2 -b c-64k.qcow2 -F qcow2 overlay.qcow2 &&
	refused overlay.qcow2 "image has a backing file '\''c-64k.qcow2'\'': the overlay alone is not the disk"
'

test_expect_success 'refused: an external data file, naming it' '
	qemu-img create -q -f qcow2 -o data_file=ext.raw datafile.qcow2 1M &&
	refused datafile.qcow2 "image keeps its data in an external data file '\''ext.raw'\''"
'

# A qemu-img image at 64 KiB: header, refcount table, block, L1, L2, data.
qemu-img convert -f raw -O qcow2 disk.raw ref.qcow2
l1=$(peek ref.qcow2 40 8)
l2=$(peek ref.qcow2 $((l1 + 1)) 7)
first=$(peek ref.qcow2 $((l2 + 1)) 7)

test_expect_success 'refused: truncated streams, each where it ends' '
	head -c 100 ref.qcow2 >t1.qcow2 && refused t1.qcow2 "truncated header" &&
	head -c $((l2 + 100)) ref.qcow2 >t2.qcow2 &&
	cat t2.qcow2 | test_expect_code 1 "$IMGCAT" >/dev/null 2>err &&
	grep "^imgcat: image truncated at offset $((l2 + 100)), inside the L2 table at $l2" err &&
	test_expect_code 1 "$IMGCAT" -s t2.qcow2 >/dev/null 2>err &&
	grep "^imgcat: L1 entry 0 at offset $l1 points to an L2 table at $l2, past the end of the file" err &&
	head -c $((first + 65536)) ref.qcow2 >t3.qcow2 &&
	cat t3.qcow2 | test_expect_code 1 "$IMGCAT" >/dev/null 2>err &&
	grep "^imgcat: image truncated at offset $((first + 65536)): the data cluster at $((first + 65536))" err &&
	head -c $((l1 + 4)) ref.qcow2 >t4.qcow2 && refused t4.qcow2 ""
'

# OFFSET BYTES VALUE: what is poked into the header, then the start of the
# message that refuses it.
cat >corruptions <<EOF
0 1 0		not a qcow2 image
4 4 4		unsupported qcow2 version 4 (sqcow2 reads versions 2 and 3)
20 4 8		bad cluster_bits 8
20 4 22		bad cluster_bits 22
79 1 2		image is marked corrupt: repair it first with qemu-img check -r all
79 1 32		unknown incompatible feature bit 5
32 4 1		encrypted image (crypt_method 1, AES)
36 4 0		L1 table of 0 entries too small for the virtual size
40 8 512	L1 table offset 512 not aligned to the cluster size 65536
56 4 0		image has no refcount table
100 4 100	bad header length 100
EOF

test_expect_success 'refused: hand-corrupted headers, each for what it is' '
	while read -r offset bytes value why; do
		cp ref.qcow2 bad.qcow2 && poke bad.qcow2 $offset $bytes $value &&
		refused bad.qcow2 "$why" || { echo "poked $offset $bytes $value"; exit 1; }
	done <corruptions
'

test_expect_success 'refused: hand-corrupted tables' '
	cp ref.qcow2 bad.qcow2 && poke bad.qcow2 $l2 1 130 &&
	refused bad.qcow2 "L2 entry at offset $l2 (guest offset 0) has reserved bits set" &&
	cp ref.qcow2 bad.qcow2 && poke bad.qcow2 $l2 1 192 &&
	refused bad.qcow2 "L2 entry at offset $l2 (guest offset 0) is compressed and has the copied bit set" &&
	cp ref.qcow2 bad.qcow2 && poke bad.qcow2 $l1 8 $(peek ref.qcow2 48 8) &&
	refused bad.qcow2 "L1 entry 0 at offset $l1 points into the refcount table" &&
	cp ref.qcow2 bad.qcow2 && poke bad.qcow2 $((l2 + 9)) 7 $first &&
	refused bad.qcow2 "" &&
	"$IMGCAT" -s bad.qcow2 2>&1 >/dev/null | grep "both point to the host cluster at $first" &&
	cp ref.qcow2 bad.qcow2 && poke bad.qcow2 $((l2 + 1)) 7 $l1 &&
	refused bad.qcow2 "L2 entry at offset $l2 (guest offset 0) points into the L1 table"
'
else
	test_skip_missing 'refusals of images made by qemu-img' 'qemu-img not found'
fi

test_done

#!/bin/sh
# sqcow2 -z: compressed images, -o's and the stream form's, checked by
# qemu-img (no errors, no leaks, the same disk) and decoded by sqcow2 -d
# from a file and a pipe: a file system of real files, random data (stored
# as it is), zeros and a mix, at every cluster size, both versions, from a
# pipe and a file, as overlays; the size against qemu-img convert -c's and
# the size printed first; the usage errors.
. "$(dirname "$0")/lib.sh"

if [ "$HAVE_QEMU" = 0 ]; then
	test_skip_missing 'compressed images checked by qemu-img' 'qemu-img not found'
	test_done
fi

# round_trip IMAGE RAW: a valid image of RAW, that sqcow2 -d reads back.
round_trip() {
	qemu-img check -q -f qcow2 "$1" &&
	qemu-img compare -q -f qcow2 -F raw "$1" "$2" &&
	"$SQCOW2" -d "$1" | cmp - "$2" &&
	cat "$1" | "$SQCOW2" -d | cmp - "$2"
}

# compressed IMAGE: qemu-img counts compressed clusters in it.
compressed() {
	qemu-img check -f qcow2 "$1" | grep -q "[1-9][0-9.]*% compressed clusters"
}

test_expect_success 'setup: an ext4 file system of real files, random, zeros, a mix' '
	mkdir tree &&
	find /usr/share/doc /usr/lib/python3* -type f -size -4M \
		-printf "%s %p\n" 2>/dev/null |
		awk "{ n += \$1; if (n > 12 * 1048576) exit; print \$2 }" >files &&
	tar -cf - -T files 2>/dev/null | tar -xf - -C tree &&
	truncate -s 32M fs.raw && mkfs.ext4 -q -F -d tree fs.raw &&
	head -c 3M /dev/urandom >random.raw &&
	truncate -s 5M zeros.raw &&
	{ head -c 1M fs.raw && head -c 1000448 /dev/zero &&
		head -c 333312 /dev/urandom && tail -c 2M fs.raw; } >mix.raw
'

test_expect_success 'a file system: smaller, valid, decoded' '
	"$SQCOW2" -z -o fs.qcow2 fs.raw &&
	round_trip fs.qcow2 fs.raw && compressed fs.qcow2 &&
	test "$(file_size fs.qcow2)" -lt $((32 * 1048576 / 2))
'

test_expect_success 'within 2% of qemu-img convert -c' '
	qemu-img convert -f raw -O qcow2 -c fs.raw qemu.qcow2 &&
	ours=$(file_size fs.qcow2) && theirs=$(file_size qemu.qcow2) &&
	echo "ours $ours qemu-img $theirs" &&
	test $((ours * 100)) -le $((theirs * 102))
'

test_expect_success 'random data is stored as it is, zeros not at all' '
	"$SQCOW2" -z -o random.qcow2 random.raw &&
	round_trip random.qcow2 random.raw && ! compressed random.qcow2 &&
	"$SQCOW2" -z -o zeros.qcow2 zeros.raw &&
	round_trip zeros.qcow2 zeros.raw &&
	test "$(file_size zeros.qcow2)" -le $((64 * 1024 * 5)) &&
	"$SQCOW2" -z -o mix.qcow2 mix.raw &&
	round_trip mix.qcow2 mix.raw && compressed mix.qcow2 &&
	"$SQCOW2" -z --no-sparsify -o kept.qcow2 mix.raw &&
	round_trip kept.qcow2 mix.raw &&
	test "$(file_size kept.qcow2)" -gt "$(file_size mix.qcow2)"
'

test_expect_success 'every cluster size, both versions' '
	for cs in 512 1k 4k 16k 64k 256k 2M; do
		for compat in 0.10 1.1; do
			"$SQCOW2" -z -c $cs --compat $compat -o c.qcow2 mix.raw &&
			round_trip c.qcow2 mix.raw || exit 1
		done || exit 1
	done &&
	"$SQCOW2" -z -c 512 -o small.qcow2 fs.raw && round_trip small.qcow2 fs.raw &&
	"$SQCOW2" -z -c 2M -o large.qcow2 fs.raw && round_trip large.qcow2 fs.raw
'

test_expect_success 'from a pipe, and an odd size' '
	cat fs.raw | "$SQCOW2" -z -s 32M -o piped.qcow2 &&
	cmp piped.qcow2 fs.qcow2 &&
	head -c 1234567 mix.raw >odd.raw &&
	cat odd.raw | "$SQCOW2" -z -s 1234567 -o odd.qcow2 &&
	qemu-img check -q odd.qcow2 &&
	cp odd.raw padded.raw && truncate -s 1234944 padded.raw &&
	"$SQCOW2" -d odd.qcow2 | cmp - padded.raw
'

test_expect_success '-b overlay and --diff' '
	cp fs.raw new.raw &&
	head -c 300000 /dev/urandom | dd of=new.raw bs=4096 seek=1000 conv=notrunc status=none &&
	dd if=fs.raw of=new.raw bs=65536 skip=10 seek=200 count=8 conv=notrunc status=none &&
	dd if=/dev/zero of=new.raw bs=65536 seek=300 count=3 conv=notrunc status=none &&
	printf "%d %d\n" $((1000 * 4096)) 300000 $((200 * 65536)) $((8 * 65536)) \
		$((300 * 65536)) $((3 * 65536)) >changed.ranges &&
	"$SQCOW2" -z -r changed.ranges -b fs.qcow2 -F qcow2 -o over.qcow2 new.raw &&
	qemu-img check -q over.qcow2 && qemu-img compare -q over.qcow2 new.raw &&
	"$SQCOW2" -z --diff fs.raw -b fs.qcow2 -F qcow2 -o diff.qcow2 new.raw &&
	qemu-img check -q diff.qcow2 && qemu-img compare -q diff.qcow2 new.raw &&
	"$SQCOW2" -z --compat 0.10 --diff fs.qcow2 -b fs.qcow2 -F qcow2 -o diff2.qcow2 new.raw &&
	qemu-img check -q diff2.qcow2 && qemu-img compare -q diff2.qcow2 new.raw &&
	test "$(file_size diff.qcow2)" -lt 1048576
'

test_expect_success 'the stream form: its exact size first, every cluster size, both versions' '
	for cs in 512 4k 64k 2M; do
		for compat in 0.10 1.1; do
			size=$("$SQCOW2" -z -c $cs --compat $compat --print-size mix.raw) &&
			"$SQCOW2" -z -c $cs --compat $compat mix.raw | cat >s.qcow2 &&
			test_eq "$(file_size s.qcow2)" "$size" &&
			round_trip s.qcow2 mix.raw || exit 1
		done || exit 1
	done &&
	size=$("$SQCOW2" -z --print-size fs.raw) &&
	"$SQCOW2" -z --expect-size "$size" fs.raw >s.qcow2 &&
	test_eq "$(file_size s.qcow2)" "$size" &&
	round_trip s.qcow2 fs.raw && compressed s.qcow2 &&
	ours=$(file_size s.qcow2) && theirs=$(file_size qemu.qcow2) &&
	test $((ours * 100)) -le $((theirs * 102)) &&
	test_expect_code 1 "$SQCOW2" -z --expect-size $((size + 512)) fs.raw >out 2>err &&
	grep "^sqcow2: the image would be $size bytes" err && test ! -s out
'

test_expect_success 'the stream form: zeros, random data, --no-sparsify, -o naming stdout' '
	"$SQCOW2" -z zeros.raw >sz.qcow2 && round_trip sz.qcow2 zeros.raw &&
	"$SQCOW2" -z random.raw >sr.qcow2 && round_trip sr.qcow2 random.raw &&
	! compressed sr.qcow2 &&
	"$SQCOW2" -z --no-sparsify mix.raw >sk.qcow2 && round_trip sk.qcow2 mix.raw &&
	"$SQCOW2" -z -o /dev/stdout fs.raw >so.qcow2 && round_trip so.qcow2 fs.raw
'

test_expect_success 'the stream form: -b overlay and --diff' '
	"$SQCOW2" -z -r changed.ranges -b fs.qcow2 -F qcow2 new.raw >sover.qcow2 &&
	qemu-img check -q sover.qcow2 && qemu-img compare -q sover.qcow2 new.raw &&
	"$SQCOW2" -z --diff fs.raw -b fs.qcow2 -F qcow2 new.raw >sdiff.qcow2 &&
	qemu-img check -q sdiff.qcow2 && qemu-img compare -q sdiff.qcow2 new.raw
'

# Four slices, cut at odd bytes (inside the header, a table, a stream,
# the padding of a cluster stored as it is), joined, are the whole; and
# slices at random places are its bytes.
test_expect_success 'the stream form in slices: joined, the whole image' '
	for cs in 512 4k 64k 2M; do
		"$SQCOW2" -z -c $cs --sparsify mix.raw >whole.qcow2 &&
		size=$(file_size whole.qcow2) && q=$((size / 4 + 777)) && : >joined.qcow2 &&
		for i in 0 1 2; do
			"$SQCOW2" -z -c $cs --sparsify --slice $((i * q)):$(((i + 1) * q)) \
				mix.raw >>joined.qcow2 || exit 1
		done &&
		"$SQCOW2" -z -c $cs --sparsify --slice $((3 * q)):$size mix.raw >>joined.qcow2 &&
		cmp whole.qcow2 joined.qcow2 || exit 1
	done &&
	for range in 0:1 100:70000 65536:131072 $((size - 600)):$size 4000:$((size - 3))
	do
		from=${range%:*} to=${range#*:} &&
		"$SQCOW2" -z -c 2M --sparsify --slice $range mix.raw >part &&
		tail -c +$((from + 1)) whole.qcow2 | head -c $((to - from)) | cmp - part ||
		exit 1
	done
'

test_expect_success 'usage errors: -z from a pipe to a pipe, with -d' '
	cat fs.raw | test_expect_code 2 "$SQCOW2" -z -s 32M >out 2>err &&
	test "$(wc -l <err)" = 1 &&
	grep "^sqcow2: -z to a stream reads the disk twice, and stdin is not a file or a block device (-o FILE does it in one pass)$" err &&
	test_expect_code 2 "$SQCOW2" -d -z fs.qcow2 >out 2>err &&
	grep "^sqcow2: --compress is for making an image, not for -d" err
'

test_done

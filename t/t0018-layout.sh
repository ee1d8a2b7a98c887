#!/bin/sh
# Images made from the layout alone (t/bin/mkimage), judged by QEMU and
# 7-Zip: files that end inside their last cluster, zero clusters over a
# backing file, images placed within a plan as -o places them, and any
# byte range of an image made on its own.
. "$(dirname "$0")/lib.sh"

MKIMAGE=$T_DIR/bin/mkimage
[ "$VARIANT" = asan ] && MKIMAGE=$T_DIR/bin/asan/mkimage
HAVE_7Z=0
command -v 7z >/dev/null 2>&1 && HAVE_7Z=1

# judge NAME IMAGE RAW: QEMU's tools, when present, and the own reader.
judge() {
	"$READBACK" compare "$2" "$3" || { echo "readback: $1"; return 1; }
	[ "$HAVE_QEMU" = 1 ] || return 0
	qemu-img check -q -f qcow2 "$2" || { echo "qemu-img check: $1"; return 1; }
	qemu-img compare -q -f qcow2 -F raw "$2" "$3" || { echo "qemu-img compare: $1"; return 1; }
	qemu-img info -f qcow2 "$2" >/dev/null || { echo "qemu-img info: $1"; return 1; }
	qemu-img map -f qcow2 --output=json "$2" >/dev/null || { echo "qemu-img map: $1"; return 1; }
	qemu-img convert -f qcow2 -O raw "$2" back.raw || { echo "qemu-img convert: $1"; return 1; }
	cmp -n "$(file_size "$3")" back.raw "$3" || { echo "qemu-img convert: $1 reads back wrong"; return 1; }
	rm -f back.raw
}

# judge_7z IMAGE: 7z t passes it, with no warning but one of data after
# the end where the refcount blocks end the file (a disk with no L2 table,
# in either order: e-* and z-*), which 7-Zip's size never counts.
judge_7z() {
	7z t "$1" >7z.out 2>&1 || { cat 7z.out; echo "7z t: $1"; return 1; }
	case $1 in
	[ez]-*.qcow2)
		awk '/^WARNINGS:$/ { getline; if ($0 !~ /^There are data after the end/) bad = 1 }
		    END { exit bad }' 7z.out ;;
	*)
		! grep -q WARNINGS 7z.out ;;
	esac || { cat 7z.out; echo "7z t warns: $1"; return 1; }
}

test_expect_success 'setup: disks empty, of zeros, with a partial last cluster, and mixed' '
	: >empty.raw && : >none.ranges &&
	make_raw zeros.raw 64M &&
	make_raw partial.raw 1000003 && put_data partial.raw 999000 1003 &&
	echo "999000 1003" >partial.ranges &&
	make_raw table.raw 1M && echo "600000 1" >table.zeros &&
	make_raw mix.raw 3M && put_data mix.raw 100000 70000 &&
	echo "100000 70000" >mix.ranges && printf "0 90000\n2000000 1048576\n" >mix.zeros &&
	# The plans of disks read with no map: every byte.
	for d in zeros partial table mix; do
		echo "0 $(file_size $d.raw)" >$d.all || exit 1
	done && cp none.ranges empty.all
'

test_expect_success 'the stream writer writes what the layout makes, to its last byte' '
	for cb in 512:9 64k:16 2M:21; do for compat in 1.1 0.10; do
		cs=${cb%:*} bits=${cb#*:} v=3 &&
		{ [ $compat = 1.1 ] || v=2; } &&
		for d in empty:none zeros:none partial:partial; do
			raw=${d%%:*}.raw ranges=${d#*:}.ranges &&
			"$SQCOW2" -c $cs --compat $compat -r $ranges $raw >sq.qcow2 &&
			"$MKIMAGE" -c $bits $([ $v = 2 ] && echo -2) $raw $ranges >mk.qcow2 &&
			cmp sq.qcow2 mk.qcow2 &&
			test_eq "$(file_size sq.qcow2)" \
				"$("$SQCOW2" -c $cs --compat $compat -r $ranges -s $(file_size $raw) --print-size)" ||
			exit 1
		done || exit 1
	done || exit 1; done
'

# header | L1 | refcount table | refcount block counting 4 clusters: qemu-img
# convert makes 196624 bytes; header | table | block of 3 for no disk.
test_expect_success 'a refcount block that ends the file ends it after its last refcount' '
	"$MKIMAGE" zeros.raw none.ranges >z.qcow2 &&
	test_eq "$(file_size z.qcow2)" $((3 * 65536 + 8)) &&
	"$MKIMAGE" empty.raw none.ranges >e.qcow2 &&
	test_eq "$(file_size e.qcow2)" $((2 * 65536 + 6)) &&
	# Within a plan, no data moves: the same file.
	"$MKIMAGE" -p zeros.all zeros.raw none.ranges | cmp - z.qcow2 &&
	"$MKIMAGE" partial.raw partial.ranges >p.qcow2 &&
	test_eq "$(file_size p.qcow2)" $((6 * 65536)) &&
	"$MKIMAGE" -z table.zeros table.raw none.ranges >t.qcow2 &&
	test_eq "$(file_size t.qcow2)" $((5 * 65536))
'

test_expect_success 'every cluster size, version and order checks clean and reads back' '
	for bits in 9 12 16 21; do for v in 3 2; do for o in stream within; do
		opts="-c $bits" &&
		{ [ $v = 3 ] || opts="$opts -2"; } &&
		# within: in the plan of the whole disk, what -o makes of it
		plan() { [ $o = stream ] || echo "-p $1.all"; } &&
		t=c$bits-v$v-$o &&
		"$MKIMAGE" $opts $(plan empty) empty.raw none.ranges >e-$t.qcow2 &&
		judge "empty $t" e-$t.qcow2 empty.raw &&
		"$MKIMAGE" $opts $(plan zeros) zeros.raw none.ranges >z-$t.qcow2 &&
		judge "zeros $t" z-$t.qcow2 zeros.raw &&
		"$MKIMAGE" $opts $(plan partial) partial.raw partial.ranges >p-$t.qcow2 &&
		judge "partial $t" p-$t.qcow2 partial.raw &&
		# Zero clusters are version 3 alone.
		{ [ $v = 2 ] || {
			"$MKIMAGE" $opts $(plan table) -z table.zeros table.raw none.ranges \
				>t-$t.qcow2 &&
			judge "zero table $t" t-$t.qcow2 table.raw &&
			"$MKIMAGE" $opts $(plan mix) -z mix.zeros mix.raw mix.ranges >m-$t.qcow2 &&
			judge "mixed $t" m-$t.qcow2 mix.raw; }; } || exit 1
	done || exit 1; done || exit 1; done &&
	# 64k: zeros over clusters 0-1 and 30-46, data over 1-2
	test_eq "$(info m-c16-v3-stream.qcow2 zero_clusters)" 18 &&
	test_eq "$(info m-c16-v3-stream.qcow2 data_clusters)" 2 &&
	# 512 B: partial.raw is 31 L2 tables in the plan, 1 kept: a gap of
	# 30 and of the refcount blocks it needs no more, the data after it.
	test "$(file_size p-c9-v3-within.qcow2)" -gt "$(file_size p-c9-v3-stream.qcow2)"
'

# The plan of the whole disk, as -o makes of a disk read with no map: its
# non-zero clusters kept, at compat 0.10 too, or all of them.
test_expect_success 'sqcow2 -o writes what the layout makes within its plan, to its last byte' '
	for cb in 512:9 64k:16 2M:21; do for compat in 1.1 0.10; do
		cs=${cb%:*} bits=${cb#*:} v=3 &&
		{ [ $compat = 1.1 ] || v=2; } &&
		for d in empty:none zeros:none partial:partial mix:mix; do
			raw=${d%%:*}.raw kept=${d#*:}.ranges &&
			"$SQCOW2" -c $cs --compat $compat -r ${d%%:*}.all -o o.qcow2 $raw &&
			"$MKIMAGE" -c $bits $([ $v = 2 ] && echo -2) -p ${d%%:*}.all \
				$raw $kept | cmp - o.qcow2 &&
			judge "-o $d $cs $compat" o.qcow2 $raw &&
			pipe_decodes o.qcow2 $raw &&
			# --no-sparsify keeps every cluster: the plan itself.
			"$SQCOW2" -c $cs --compat $compat -r ${d%%:*}.all --no-sparsify \
				-o all.qcow2 $raw &&
			"$MKIMAGE" -c $bits $([ $v = 2 ] && echo -2) -p ${d%%:*}.all \
				$raw ${d%%:*}.all | cmp - all.qcow2 &&
			pipe_decodes all.qcow2 $raw || exit 1
		done || exit 1
	done || exit 1; done
'

if [ "$HAVE_7Z" = 1 ]; then
test_expect_success '7z t passes them all, and warns only of the refcount blocks' '
	for f in *-c*-v*.qcow2; do judge_7z "$f" || exit 1; done
'
else
	test_skip_missing '7z t passes them all, and warns only of the refcount blocks' '7z not found'
fi

test_expect_success 'version 2 has no zero flag: zero clusters are refused' '
	test_fails_with 1 "mkimage: zero clusters need qcow2 version 3 (compat 1.1)" \
		"$MKIMAGE" -2 -z table.zeros table.raw none.ranges &&
	"$MKIMAGE" -2 -z partial.ranges partial.raw partial.ranges >v2.qcow2 &&
	test_eq "$(info v2.qcow2 zero_clusters)" 0
'

# The new disk: zeros over 2 MiB of the backing file's data, new data at 5 MiB.
test_expect_success 'setup: a backing file of data, a disk with zeros over some' '
	head -c 8M /dev/urandom >backing.raw && cp backing.raw current.raw &&
	head -c 2M /dev/zero | dd of=current.raw bs=1M seek=2 conv=notrunc status=none &&
	put_data current.raw 5242880 5000 &&
	echo "5242880 5000" >changed.ranges && echo "2097152 2097152" >changed.zeros &&
	! cmp -s backing.raw current.raw &&
	echo "0 8388608" >current.all &&
	printf "0 2097152\n4194304 4194304\n" >current.nonzero
'

test_expect_success 'sqcow2 -o -b: the layout within its plan, zero clusters over the backing data' '
	for cb in 512:9 64k:16 2M:21; do
		cs=${cb%:*} bits=${cb#*:} &&
		"$SQCOW2" -c $cs -r current.all -b backing.raw -F raw -o ov.qcow2 current.raw &&
		"$MKIMAGE" -c $bits -p current.all -b backing.raw -F raw -z changed.zeros \
			current.raw current.nonzero | cmp - ov.qcow2 &&
		"$READBACK" check ov.qcow2 || exit 1
	done
'

if [ "$HAVE_QEMU" = 1 ]; then
test_expect_success 'zero clusters hide the backing data: map says zero, depth 0' '
	for bits in 9 16 21; do for o in "" "-p current.all"; do
		"$MKIMAGE" -c $bits $o -b backing.raw -F raw -z changed.zeros \
			current.raw changed.ranges >ov.qcow2 &&
		"$READBACK" check ov.qcow2 &&
		qemu-img check -q ov.qcow2 &&
		qemu-img compare -q ov.qcow2 current.raw &&
		qemu-img map --output=json ov.qcow2 >map.json &&
		grep -q "\"start\": 2097152, \"length\": 2097152, \"depth\": 0,.* \"zero\": true, \"data\": false" map.json ||
		{ cat map.json; exit 1; }
	done || exit 1; done
'
else
	test_skip_missing 'zero clusters hide the backing data: map says zero, depth 0' 'qemu-img not found'
fi

test_expect_success 'any byte range of an image, made alone, is those bytes of it' '
	for bits in 9 16 21; do for o in "" "-p mix.all"; do
		"$MKIMAGE" -c $bits $o -z mix.zeros mix.raw mix.ranges >full.qcow2 &&
		size=$(file_size full.qcow2) cs=$((1 << bits)) &&
		for s in 0 1 $((cs - 1)) $cs $((3 * cs + 7)) $((size / 2)) $((size - 1)) $size; do
			for e in $((s + 1)) $((s + cs + 1)) $((size / 2 + 3)) $((size + 9)); do
				[ $e -lt $s ] || {
					"$MKIMAGE" -c $bits $o -z mix.zeros -s $s:$e mix.raw mix.ranges >slice &&
					dd if=full.qcow2 bs=$cs skip=$s count=$((e - s)) \
						iflag=skip_bytes,count_bytes status=none >want &&
					cmp want slice; } || { echo "slice $s:$e of $bits$o"; exit 1; }
			done || exit 1
		done || exit 1
	done || exit 1; done
'

test_done

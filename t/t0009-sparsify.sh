#!/bin/sh
# --sparsify: a first pass over a seekable input drops the clusters that
# hold only zeros, and the stream form is still written strictly forward.
. "$(dirname "$0")/lib.sh"

FAULT_SO=${FAULT_SO:-$(dirname "$READBACK")/fault.so}
ASAN_OPTIONS=verify_asan_link_order=0:${ASAN_OPTIONS:-}
export FAULT_SO ASAN_OPTIONS

# 24 MiB: data, 8 MiB of written zeros (allocated, so SEEK_DATA calls them
# data), a hole, data with zeros inside, and a partial last cluster.
size=25165000
test_expect_success 'setup' '
	make_raw z.raw $size && put_data z.raw 0 1000000 &&
	head -c 8M /dev/zero | dd of=z.raw bs=1M seek=2 conv=notrunc status=none &&
	put_data z.raw 12000000 70000 &&
	head -c 3M /dev/zero | dd of=z.raw bs=1M seek=13 conv=notrunc status=none &&
	put_data z.raw 14000000 1 && put_data z.raw 25164000 1000
'

test_expect_success 'written zeros are stored with --no-sparsify' '
	"$SQCOW2" --no-sparsify <z.raw >plain.qcow2 && verify plain.qcow2 z.raw &&
	test "$(info plain.qcow2 data_clusters)" -gt 190
'

test_expect_success 'with --sparsify they are not, and the image is the same disk' '
	"$SQCOW2" --sparsify <z.raw >sparse.qcow2 && verify sparse.qcow2 z.raw &&
	# 0-1000000: clusters 0-15; 12000000+70000: 183-184; 14000000: 213;
	# the partial last cluster: 383.
	test_eq "$(info sparse.qcow2 data_clusters)" 20
'

if [ "$HAVE_QEMU" = 1 ]; then
test_expect_success 'as many data clusters as qemu-img convert allocates' '
	qemu-img convert -f raw -O qcow2 z.raw qemu.qcow2 &&
	test_eq "$(info sparse.qcow2 data_clusters)" "$(info qemu.qcow2 data_clusters)"
'
else
	test_skip_missing 'as many data clusters as qemu-img convert allocates' 'qemu-img not found'
fi

test_expect_success 'metadata first, data in guest order: a forward stream' '
	test_eq "$(info sparse.qcow2 metadata_first)" 1 &&
	test_eq "$(info sparse.qcow2 guest_order)" 1 &&
	"$SQCOW2" --sparsify <z.raw | cat >piped.qcow2 && cmp piped.qcow2 sparse.qcow2
'

test_expect_success '--print-size --sparsify is exact' '
	test_eq "$("$SQCOW2" --print-size --sparsify <z.raw)" "$(file_size sparse.qcow2)"
'

test_expect_success 'the same as -o FILE drops' '
	"$SQCOW2" -o o.qcow2 <z.raw &&
	test_eq "$(info o.qcow2 data_clusters)" "$(info sparse.qcow2 data_clusters)" &&
	test_eq "$(file_size o.qcow2)" "$(file_size sparse.qcow2)"
'

test_expect_success 'with a range file, its zero clusters are dropped too' '
	echo "0 $size" >all.ranges &&
	"$SQCOW2" --sparsify -r all.ranges <z.raw >r.qcow2 &&
	cmp r.qcow2 sparse.qcow2
'

test_expect_success '--input FILE in place of stdin' '
	"$SQCOW2" --sparsify -i z.raw >i.qcow2 </dev/null && cmp i.qcow2 sparse.qcow2 &&
	"$SQCOW2" --input z.raw -o io.qcow2 && cmp io.qcow2 o.qcow2 &&
	test_fails_with 1 "sqcow2: nope.raw: No such file or directory" "$SQCOW2" -i nope.raw
'

test_expect_success 'every cluster size, and without SEEK_DATA' '
	for cs in 512 4k 64k 2M; do
		"$SQCOW2" --sparsify -c $cs <z.raw >s$cs.qcow2 && verify s$cs.qcow2 z.raw &&
		"$SQCOW2" -c $cs -o o$cs.qcow2 <z.raw &&
		test_eq "$(info s$cs.qcow2 data_clusters)" "$(info o$cs.qcow2 data_clusters)" &&
		FAULTS=refuse=seek_data LD_PRELOAD=$FAULT_SO "$SQCOW2" --sparsify -c $cs <z.raw >n$cs.qcow2 &&
		cmp n$cs.qcow2 s$cs.qcow2 || exit 1
	done
'

test_expect_success 'a disk of zeros and an empty disk' '
	head -c 3M /dev/zero >zeros.raw && "$SQCOW2" --sparsify <zeros.raw >zeros.qcow2 &&
	verify zeros.qcow2 zeros.raw && test_eq "$(info zeros.qcow2 data_clusters)" 0 &&
	: >empty.raw && "$SQCOW2" --sparsify <empty.raw >empty.qcow2 && verify empty.qcow2 empty.raw
'

test_expect_success '--sparsify on a pipe is a usage error that says why' '
	test_fails_with 2 "sqcow2: --sparsify reads the input twice, and stdin is not a file or a block device (-o FILE does it in one pass)" \
		sh -c "cat z.raw | \"\$SQCOW2\" --sparsify -s $size >out.qcow2"
'

test_expect_success '--sparsify with --backing makes its zeros zero clusters' '
	"$SQCOW2" <z.raw >base.qcow2 &&
	"$SQCOW2" --sparsify -r all.ranges -b base.qcow2 -F qcow2 <z.raw >over.qcow2 &&
	verify_overlay over.qcow2 z.raw &&
	test "$(info over.qcow2 zero_clusters)" -gt 150
'

test_expect_success 'a JSON layout and the plain form give the same image' '
	"$SQCOW2" --map z.raw >plain.ranges &&
	awk "!/^#/ { printf \"%s{\\\"offset\\\": %s, \\\"length\\\": %s}\", n++ ? \",\\n \" : \"[\", \$1, \$2 }
		END { print \"]\" }" plain.ranges >layout.json &&
	head -c 1 layout.json | grep -q "\\[" &&
	cat z.raw | "$SQCOW2" -s $size -r plain.ranges >fromplain.qcow2 &&
	cat z.raw | "$SQCOW2" -s $size -r layout.json >fromjson.qcow2 &&
	cmp fromplain.qcow2 fromjson.qcow2 && verify fromjson.qcow2 z.raw
'

test_expect_success 'holes inside the ranges are not read by the first pass' '
	make_raw holes.raw 4G && put_data holes.raw 3000000000 100000 &&
	echo "0 4294967296" >holes.ranges &&
	"$SQCOW2" -v --sparsify -r holes.ranges <holes.raw >holes.qcow2 2>stats &&
	verify holes.qcow2 holes.raw &&
	read=$(sed -n "s/^sqcow2: read \([0-9]*\) bytes.*/\1/p" stats) &&
	echo "read $read" && test "$read" -le $((4 << 20))
'

test_done

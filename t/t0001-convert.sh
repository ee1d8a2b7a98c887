#!/bin/sh
# Raw disks with data at chosen places, converted through a pipe.
. "$(dirname "$0")/lib.sh"

# convert_and_verify RAW SIZE [options]: through a pipe, then the image
# must check clean, read back as RAW and be exactly --print-size long.
convert_and_verify() {
	raw=$1 size=$2
	shift 2
	convert "$raw" "$raw.qcow2" -s "$size" "$@" &&
	verify "$raw.qcow2" "$raw" &&
	"$SQCOW2" -s "$size" "$@" --print-size >"$raw.size" &&
	echo "$(file_size "$raw.qcow2")" >"$raw.want" &&
	test_cmp "$raw.want" "$raw.size"
}

test_expect_success 'empty disk of 0 bytes' '
	: >zero.raw && : >none.ranges &&
	convert_and_verify zero.raw 0 -r none.ranges &&
	test_eq "$(info zero.raw.qcow2 virtual_size)" 0 &&
	test_eq "$(info zero.raw.qcow2 data_clusters)" 0
'

# header | L1 | refcount table | refcount block, which ends the file after
# its 4 refcounts (qemu-img convert makes 196624 bytes).
test_expect_success 'empty 1 GiB disk stores no cluster' '
	make_raw empty.raw 1G && : >none.ranges &&
	convert_and_verify empty.raw 1G -r none.ranges &&
	test_eq "$(info empty.raw.qcow2 data_clusters)" 0 &&
	test_eq "$(file_size empty.raw.qcow2)" $((3 * 65536 + 8))
'

test_expect_success 'one byte of data' '
	make_raw one.raw 10M && put_data one.raw 5000000 1 &&
	echo "5000000 1" >one.ranges &&
	convert_and_verify one.raw 10M -r one.ranges &&
	test_eq "$(info one.raw.qcow2 data_clusters)" 1
'

test_expect_success 'a 1-byte disk' '
	printf x >tiny.raw && echo "0 1" >tiny.ranges &&
	convert_and_verify tiny.raw 1 -r tiny.ranges &&
	test_eq "$(info tiny.raw.qcow2 virtual_size)" 512
'

test_expect_success 'without --ranges the whole disk is stored' '
	make_raw dense.raw 3M && put_data dense.raw 0 3M &&
	convert dense.raw dense.qcow2 -s 3M &&
	verify dense.qcow2 dense.raw &&
	test_eq "$(info dense.qcow2 data_clusters)" 48
'

test_expect_success 'data only in the partial last cluster' '
	make_raw tail.raw 1049576 && put_data tail.raw 1049000 576 &&
	echo "1049000 576" >tail.ranges &&
	convert_and_verify tail.raw 1049576 -r tail.ranges &&
	test_eq "$(info tail.raw.qcow2 data_clusters)" 1
'

test_expect_success 'size not a multiple of 512 rounds up, content identical' '
	make_raw odd.raw 1000001 && put_data odd.raw 0 1000001 &&
	convert_and_verify odd.raw 1000001 -c 4k &&
	test_eq "$(info odd.raw.qcow2 virtual_size)" 1000448
'

test_expect_success 'dense disk of odd size without --ranges' '
	make_raw oddd.raw 777777 && put_data oddd.raw 0 777777 &&
	convert oddd.raw oddd.qcow2 -s 777777 &&
	verify oddd.qcow2 oddd.raw
'

test_expect_success 'several ranges in one cluster make one data cluster' '
	make_raw same.raw 1M && put_data same.raw 70000 10 &&
	put_data same.raw 70100 10 && put_data same.raw 131000 72 &&
	printf "70100 10\n70000 10\n131000 72\n" >same.ranges &&
	convert_and_verify same.raw 1M -r same.ranges &&
	test_eq "$(info same.raw.qcow2 data_clusters)" 1
'

test_expect_success 'overlapping and touching ranges' '
	make_raw ovl.raw 4M && put_data ovl.raw 100000 300000 &&
	printf "100000 200000\n150000 100\n300000 100000\n0x10000 1\n" >ovl.ranges &&
	convert_and_verify ovl.raw 4M -r ovl.ranges
'

test_expect_success 'ranges straddling the 512 MiB L2 boundary' '
	make_raw l2.raw 1G && put_data l2.raw $((536870912 - 70000)) 140000 &&
	echo "$((536870912 - 70000)) 140000" >l2.ranges &&
	convert_and_verify l2.raw 1G -r l2.ranges &&
	test_eq "$(info l2.raw.qcow2 l2_tables)" 2 &&
	test_eq "$(info l2.raw.qcow2 data_clusters)" 4
'

test_expect_success 'every cluster size from 512 to 2M' '
	make_raw cs.raw 5M && put_data cs.raw 1000 3000 &&
	put_data cs.raw 2097000 2000 && put_data cs.raw 5242000 880 &&
	printf "1000 3000\n2097000 2000\n5242000 880\n" >cs.ranges &&
	for cs in 512 1k 2k 4k 8k 16k 32k 64k 128k 256k 512k 1M 2M; do
		convert_and_verify cs.raw 5M -r cs.ranges -c $cs || { echo "at -c $cs"; exit 1; }
	done
'

test_expect_success 'a 64 GiB sparse disk' '
	make_raw big.raw 64G && put_data big.raw 0 4096 &&
	put_data big.raw 42949672960 100000 && put_data big.raw 68719476000 736 &&
	printf "0 4096\n42949672960 100000\n68719476000 736\n" >big.ranges &&
	"$SQCOW2" -s 64G -r big.ranges <big.raw >big.qcow2 &&
	verify big.qcow2 big.raw &&
	test_eq "$(info big.qcow2 data_clusters)" 4 &&
	test_eq "$(info big.qcow2 file_size)" "$("$SQCOW2" -s 64G -r big.ranges --print-size)"
'

test_expect_success 'more than one refcount block' '
	make_raw rc.raw 2M && put_data rc.raw 0 2M &&
	convert_and_verify rc.raw 2M -c 512 &&
	test "$(info rc.raw.qcow2 refcount_blocks)" -gt 1
'

test_expect_success 'metadata first, data in guest order' '
	test_eq "$(info l2.raw.qcow2 metadata_first)" 1 &&
	test_eq "$(info l2.raw.qcow2 guest_order)" 1 &&
	test_eq "$(info rc.raw.qcow2 metadata_first)" 1 &&
	test_eq "$(info rc.raw.qcow2 guest_order)" 1
'

test_done

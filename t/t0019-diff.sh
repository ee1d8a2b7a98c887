#!/bin/sh
# --diff BASE: an incremental image from two raw disks; zero clusters that
# cost nothing over a backing file; sparsifying a file by default; -o
# sharing extents where the file system can.
. "$(dirname "$0")/lib.sh"

test_expect_success 'setup: three days of a disk' '
	make_raw day1.raw 64M && put_data day1.raw 0 8388608 &&
	put_data day1.raw 30000000 2000000 &&
	cp day1.raw day2.raw && put_data day2.raw 2097152 1048576 &&
	head -c 1M /dev/zero | dd of=day2.raw bs=1M seek=5 conv=notrunc status=none &&
	put_data day2.raw 41943040 100000 &&
	cp day2.raw day3.raw && put_data day3.raw 7000000 5000 &&
	truncate -s 1M cut.raw && dd if=cut.raw of=day3.raw bs=1M seek=30 conv=notrunc status=none &&
	"$SQCOW2" day1.raw >day1.qcow2 && verify day1.qcow2 day1.raw
'

test_expect_success 'a chain of three days: each overlay holds what changed' '
	"$SQCOW2" -v --diff day1.raw -b day1.qcow2 -F qcow2 day2.raw >day2.qcow2 2>stats2 &&
	verify_overlay day2.qcow2 day2.raw &&
	"$SQCOW2" -v --diff day2.raw -b day2.qcow2 -F qcow2 day3.raw >day3.qcow2 2>stats3 &&
	verify_overlay day3.qcow2 day3.raw &&
	# day 2: 1 MiB of new data (16 clusters), 100000 bytes over 2, and
	# 1 MiB of zeros over old data: 16 zero clusters, no data.
	test_eq "$(info day2.qcow2 data_clusters)" 18 &&
	test_eq "$(info day2.qcow2 zero_clusters)" 16 &&
	# day 3: 5000 bytes in one cluster, and 1 MiB zeroed, of which 9
	# clusters held data.
	test_eq "$(info day3.qcow2 data_clusters)" 1 &&
	test_eq "$(info day3.qcow2 zero_clusters)" 9 &&
	changed=$((1048576 + 100000 + 5000)) &&
	stored=$(( ($(info day2.qcow2 data_clusters) + $(info day3.qcow2 data_clusters)) * 65536 )) &&
	echo "# changed $changed bytes of data, stored $stored in data clusters" >&3
' 3>&1

test_expect_success 'an unchanged disk gives an overlay of no data clusters' '
	"$SQCOW2" --diff day1.raw -b day1.qcow2 -F qcow2 day1.raw >same.qcow2 &&
	verify_overlay same.qcow2 day1.raw &&
	test_eq "$(info same.qcow2 data_clusters)" 0 &&
	test_eq "$(info same.qcow2 zero_clusters)" 0
'

if [ "$HAVE_QEMU" = 1 ]; then
test_expect_success 'qemu-img map shows the zero clusters as zero, local' '
	qemu-img map --output=json day2.qcow2 >map.json &&
	grep -q "\"start\": 5242880, \"length\": 1048576, \"depth\": 0, \"present\": true, \"zero\": true, \"data\": false" map.json
'
else
	test_skip_missing 'qemu-img map shows the zero clusters as zero, local' 'qemu-img not found'
fi

test_expect_success 'with -o, in one pass, from a pipe too; with --print-size, exact' '
	"$SQCOW2" --diff day1.raw -b day1.qcow2 -F qcow2 -o day2-o.qcow2 day2.raw &&
	verify_overlay day2-o.qcow2 day2.raw &&
	test_eq "$(info day2-o.qcow2 data_clusters)" 18 &&
	test_eq "$(info day2-o.qcow2 metadata_first)" 1 &&
	cat day2.raw | "$SQCOW2" -s 64M --diff day1.raw -b day1.qcow2 -F qcow2 -o day2-p.qcow2 &&
	cmp day2-o.qcow2 day2-p.qcow2 &&
	test_eq "$("$SQCOW2" --diff day1.raw -b day1.qcow2 -F qcow2 --print-size day2.raw)" \
		"$(file_size day2.qcow2)"
'

test_expect_success 'with -r, only the ranges are compared' '
	echo "2097152 1048576" >some.ranges &&
	"$SQCOW2" -r some.ranges --diff day1.raw -b day1.qcow2 -F qcow2 day2.raw >some.qcow2 &&
	test_eq "$(info some.qcow2 data_clusters)" 16 &&
	test_eq "$(info some.qcow2 zero_clusters)" 0
'

test_expect_success 'a disk that grew is compared with zeros past the old end; one that shrank is refused' '
	cp day2.raw grown.raw && truncate -s 80M grown.raw && put_data grown.raw 70000000 1000 &&
	"$SQCOW2" --diff day1.raw -b day1.qcow2 -F qcow2 grown.raw >grown.qcow2 &&
	verify_overlay grown.qcow2 grown.raw &&
	head -c 32M day2.raw >shrunk.raw &&
	test_fails_with 1 "sqcow2: day1.raw: the disk shrank, from 67108864 bytes to 33554432" \
		"$SQCOW2" --diff day1.raw -b day1.qcow2 -F qcow2 shrunk.raw
'

test_expect_success '--diff needs -b, and a file to read twice or -o' '
	test_fails_with 2 "sqcow2: --diff needs --backing, the image of the previous disk" \
		"$SQCOW2" --diff day1.raw day2.raw &&
	test_fails_with 2 "sqcow2: --diff reads the input twice, and stdin is not a file or a block device (-o FILE does it in one pass)" \
		sh -c "cat day2.raw | \"\$SQCOW2\" -s 64M --diff day1.raw -b day1.qcow2 >x.qcow2"
'

test_expect_success 'version 2 has no zero flag: the zeros are stored' '
	"$SQCOW2" --compat 0.10 --diff day1.raw -b day1.qcow2 -F qcow2 day2.raw >v2.qcow2 &&
	verify_overlay v2.qcow2 day2.raw &&
	test_eq "$(info v2.qcow2 zero_clusters)" 0 &&
	test_eq "$(info v2.qcow2 data_clusters)" 34
'

test_expect_success 'zeros over a backing file cost nothing with -o and --sparsify too' '
	cp day1.raw zeroed.raw &&
	head -c 1M /dev/zero | dd of=zeroed.raw bs=1M seek=5 conv=notrunc status=none &&
	echo "5242880 1048576" >zeroed.ranges &&
	"$SQCOW2" -r zeroed.ranges -b day1.qcow2 -F qcow2 -o z-o.qcow2 zeroed.raw &&
	verify_overlay z-o.qcow2 zeroed.raw &&
	test_eq "$(info z-o.qcow2 data_clusters)" 0 && test_eq "$(info z-o.qcow2 zero_clusters)" 16 &&
	"$SQCOW2" --sparsify -r zeroed.ranges -b day1.qcow2 -F qcow2 zeroed.raw >z-s.qcow2 &&
	verify_overlay z-s.qcow2 zeroed.raw &&
	test_eq "$(info z-s.qcow2 zero_clusters)" 16 &&
	cat zeroed.raw | "$SQCOW2" -s 64M -r zeroed.ranges -b day1.qcow2 -F qcow2 >z-p.qcow2 &&
	verify_overlay z-p.qcow2 zeroed.raw && test_eq "$(info z-p.qcow2 data_clusters)" 16
'

test_expect_success 'a hole where the backing file has data is a zero cluster, not dropped' '
	cp --sparse=always zeroed.raw holed.raw &&
	! "$SQCOW2" --map holed.raw | grep -q "^5242880 " &&
	"$SQCOW2" -r zeroed.ranges -b day1.qcow2 -F qcow2 -o h-o.qcow2 holed.raw &&
	verify_overlay h-o.qcow2 zeroed.raw &&
	"$SQCOW2" --diff day1.raw -b day1.qcow2 -F qcow2 holed.raw >h-d.qcow2 &&
	verify_overlay h-d.qcow2 zeroed.raw &&
	test_eq "$(info h-d.qcow2 zero_clusters)" 16
'

test_expect_success 'a file is sparsified by default; a pipe and --no-sparsify are not; --slice must say' '
	make_raw written.raw 16M && put_data written.raw 0 1000000 &&
	head -c 8M /dev/zero | dd of=written.raw bs=1M seek=4 conv=notrunc status=none &&
	"$SQCOW2" written.raw >default.qcow2 && verify default.qcow2 written.raw &&
	"$SQCOW2" --sparsify written.raw | cmp - default.qcow2 &&
	test_eq "$("$SQCOW2" --print-size written.raw)" "$(file_size default.qcow2)" &&
	"$SQCOW2" --no-sparsify written.raw >kept.qcow2 && verify kept.qcow2 written.raw &&
	test "$(file_size kept.qcow2)" -gt $(( $(file_size default.qcow2) + 8000000 )) &&
	cat written.raw | "$SQCOW2" -s 16M >piped.qcow2 && verify piped.qcow2 written.raw &&
	test "$(file_size piped.qcow2)" -ge "$(file_size kept.qcow2)" &&
	test_fails_with 2 "sqcow2: --slice of a file or block device needs --no-sparsify (cut the image that option makes) or --sparsify (cut the one made whole by default)" \
		"$SQCOW2" --slice 0: written.raw &&
	"$SQCOW2" --slice 0: --no-sparsify written.raw | cmp - kept.qcow2 &&
	"$SQCOW2" --slice 0: --sparsify written.raw | cmp - default.qcow2
'

test_expect_success 'an all-zero disk is no larger than qemu-img makes it' '
	make_raw zero.raw 1G && head -c 1M /dev/zero | dd of=zero.raw conv=notrunc status=none &&
	"$SQCOW2" zero.raw >zero.qcow2 && verify zero.qcow2 zero.raw &&
	test "$(file_size zero.qcow2)" -le 196624
'

if [ "$(id -u)" = 0 ] && command -v mkfs.xfs >/dev/null 2>&1 &&
    command -v filefrag >/dev/null 2>&1 && make_raw xfs.img 1G &&
    mkfs.xfs -q -f -m reflink=1 xfs.img 2>/dev/null && mkdir -p xfs &&
    mount -o loop xfs.img xfs 2>/dev/null; then
test_expect_success '-o on XFS with reflink shares the extents of the data' '
	head -c 64M /dev/urandom >xfs/dense.raw && sync &&
	before=$(df -k xfs | awk "NR == 2 { print \$3 }") &&
	"$SQCOW2" -o xfs/dense.qcow2 xfs/dense.raw && sync &&
	after=$(df -k xfs | awk "NR == 2 { print \$3 }") &&
	echo "# extra space: $((after - before)) KiB for 64 MiB of data" &&
	test $((after - before)) -lt 1024 &&
	filefrag -v xfs/dense.qcow2 | grep -q shared &&
	verify xfs/dense.qcow2 xfs/dense.raw
'
	umount xfs
else
	test_skip_missing '-o on XFS with reflink shares the extents of the data' \
		'needs root, mkfs.xfs and filefrag for a loop XFS'
fi

test_done

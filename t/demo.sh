#!/bin/sh
# t/demo.sh SQCOW2: make a 1 GiB sparse sample disk with three pieces of
# data, list its data ranges, convert it through a pipe, and check it.
set -e
sqcow2=$1
rm -f demo.raw demo.ranges demo.qcow2
truncate -s 1G demo.raw
for offset in 0 268435456 1073737728; do
	printf 'sqcow2 demo data at offset %s\n' "$offset" |
		dd of=demo.raw bs=4096 seek="$offset" oflag=seek_bytes conv=notrunc status=none
done
printf '%s\n' '# OFFSET LENGTH' '0 4096' '268435456 4096' '1073737728 4096' > demo.ranges
# A 1 GiB disk through a pipe: sqcow2 reads it all and stores 3 clusters.
cat demo.raw | "$sqcow2" --size 1G --ranges demo.ranges > demo.qcow2
echo "demo.raw: $(stat -c %s demo.raw) bytes virtual; demo.qcow2: $(stat -c %s demo.qcow2) bytes"
if command -v qemu-img >/dev/null 2>&1; then
	qemu-img check demo.qcow2
	qemu-img compare demo.qcow2 demo.raw
else
	echo "qemu-img not found: install qemu-utils to check demo.qcow2"
fi

#!/bin/sh
# sqcow2 -d on compressed images as people download and keep them: file
# systems with real files, compressed by qemu-img convert -c (deflate, and
# zstd) at every cluster size, in its default order and out of order (-W), and a disk a
# running VM wrote compressed in random order; from a file, from a pipe to
# a pipe and from a pipe to a file.  qemu-img convert -O raw is the oracle;
# images it cannot make are left out.
. "$(dirname "$0")/lib.sh"

if [ "$HAVE_QEMU" = 0 ]; then
	test_skip_missing 'compressed images made by qemu-img' 'qemu-img not found'
	test_done
fi

# decodes IMAGE: from a file, pipe to pipe, pipe to a file, as qemu-img reads it.
decodes() {
	qemu-img convert -f qcow2 -O raw "$1" want.raw &&
	"$SQCOW2" -d "$1" >got.raw && cmp want.raw got.raw &&
	cat "$1" | "$SQCOW2" -d | cmp want.raw - &&
	cat "$1" | "$SQCOW2" -d -o piped.raw && cmp want.raw piped.raw &&
	"$SQCOW2" -t "$1"
}

# A file system with files in it: the text, code and libraries of this
# machine, about 24 MiB in a 64 MiB ext4, made without mounting it.
test_expect_success 'setup: an ext4 file system of real files' '
	mkdir tree &&
	find /usr/share/doc /usr/lib/python3* /usr/bin -type f -size -4M \
		-printf "%s %p\n" 2>/dev/null |
		awk "{ n += \$1; if (n > 24 * 1048576) exit; print \$2 }" >files &&
	tar -cf - -T files 2>/dev/null | tar -xf - -C tree &&
	test "$(du -sm tree | cut -f1)" -ge 8 &&
	truncate -s 64M fs.raw && mkfs.ext4 -q -F -d tree fs.raw
'

test_expect_success 'qemu-img convert -c, every cluster size, both versions' '
	for cs in 512 4k 64k 2M; do
		for compat in 0.10 1.1; do
			qemu-img convert -f raw -O qcow2 -c -o cluster_size=$cs,compat=$compat \
				fs.raw c.qcow2 && decodes c.qcow2 || exit 1
		done || exit 1
	done
'

test_expect_success 'zstd (compression_type=zstd), every cluster size' '
	for cs in 512 4k 64k 2M; do
		qemu-img convert -f raw -O qcow2 -c -o cluster_size=$cs,compression_type=zstd \
			fs.raw z.qcow2 && decodes z.qcow2 || exit 1
	done &&
	qemu-img convert -f raw -O qcow2 -c -W -m 8 -o compression_type=zstd fs.raw z.qcow2 &&
	decodes z.qcow2
'

test_expect_success 'refused with the guest offset: a zstd frame broken' '
	qemu-img convert -f raw -O qcow2 -c -o compression_type=zstd fs.raw z.qcow2 &&
	cp z.qcow2 bad.qcow2 &&
	printf "\377" | dd of=bad.qcow2 bs=1 seek=327680 conv=notrunc status=none &&
	! qemu-img convert -f qcow2 -O raw bad.qcow2 qemu.raw 2>/dev/null &&
	test_expect_code 1 "$SQCOW2" -d bad.qcow2 >/dev/null 2>err &&
	grep "^sqcow2: bad.qcow2: compressed cluster at guest offset 0 (offset 327680): " err &&
	cat bad.qcow2 | test_expect_code 1 "$SQCOW2" -d >/dev/null 2>err &&
	grep "^sqcow2: stdin: compressed cluster at guest offset 0 (offset 327680): " err
'

test_expect_success '-v counts the compressed clusters and what the window held' '
	qemu-img convert -f raw -O qcow2 -c fs.raw c.qcow2 &&
	cat c.qcow2 | "$SQCOW2" -d -v 2>err | cmp fs.raw - &&
	grep "^sqcow2: read [0-9]* bytes.* [1-9][0-9]* compressed clusters inflated from [0-9]* bytes" err
'

test_expect_success 'out of order (-W): a pipe to a file writes each cluster in its place' '
	qemu-img convert -f raw -O qcow2 -c -W -m 8 fs.raw w.qcow2 && decodes w.qcow2
'

# A VM's disk: compressed writes in a scattered order, each a cluster, some
# rewritten in part (no longer compressed), zeroed and discarded afterwards.
test_expect_success 'a disk a running VM wrote compressed, in random order' '
	qemu-img create -q -f qcow2 vm.qcow2 32M &&
	awk "BEGIN { for (i = 0; i < 120; i++)
		printf \"write -c -P %d %d 64k\n\", i + 1, i * 37 % 500 * 65536 }" >cmds &&
	printf "write -z 3M 128k\ndiscard 5M 64k\nwrite -P 9 7M 4k\n" >>cmds &&
	printf "write -P 7 %d 4k\n" $((37 * 65536 + 8192)) $((74 * 65536)) >>cmds &&
	set -- && while read -r line; do set -- "$@" -c "$line" || exit 1; done <cmds &&
	qemu-io "$@" vm.qcow2 >/dev/null &&
	decodes vm.qcow2 &&
	cat vm.qcow2 | test_expect_code 1 "$SQCOW2" -d -w 0 >/dev/null 2>err &&
	grep "^sqcow2: stdin: .*reorder window (0 bytes)" err
'

# qemu-img puts the first compressed cluster of 64 KiB clusters just after
# the L2 table in cluster 4; a first byte 0xff is a block type deflate lacks.
test_expect_success 'refused with the guest offset: a compressed cluster broken' '
	qemu-img convert -f raw -O qcow2 -c fs.raw c.qcow2 &&
	cp c.qcow2 bad.qcow2 &&
	printf "\377" | dd of=bad.qcow2 bs=1 seek=327680 conv=notrunc status=none &&
	! qemu-img convert -f qcow2 -O raw bad.qcow2 qemu.raw 2>/dev/null &&
	test_expect_code 1 "$SQCOW2" -d bad.qcow2 >/dev/null 2>err &&
	grep "^sqcow2: bad.qcow2: compressed cluster at guest offset 0 (offset 327680): .*, at byte 0 of its stream" err &&
	cat bad.qcow2 | test_expect_code 1 "$SQCOW2" -d >/dev/null 2>err &&
	grep "^sqcow2: stdin: compressed cluster at guest offset 0 (offset 327680): " err &&
	test_expect_code 1 "$SQCOW2" -t bad.qcow2 2>/dev/null
'

test_expect_success 'refused: a compressed image cut short, from a pipe' '
	qemu-img convert -f raw -O qcow2 -c fs.raw c.qcow2 &&
	head -c $(($(file_size c.qcow2) / 2)) c.qcow2 >half.qcow2 &&
	cat half.qcow2 | test_expect_code 1 "$SQCOW2" -d >/dev/null 2>err &&
	grep "^sqcow2: stdin: image truncated at offset" err
'

test_done

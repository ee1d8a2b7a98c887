#!/bin/sh
# --slice START:END: any byte range of the stream form, made on its own,
# byte for byte what the whole stream holds there.
. "$(dirname "$0")/lib.sh"

# slices_join NAME WHOLE CUTS OPTIONS...: make the slices between the cuts
# (offsets in WHOLE), each in its own process, all at once, and join them;
# the join must be WHOLE, and each slice as long as --print-size says.
slices_join() {
	name=$1 whole=$2 cuts=$3
	shift 3
	set -- "$@"
	prev=0 i=0 pids=""
	for cut in $cuts $(file_size "$whole"); do
		i=$((i + 1))
		"$SQCOW2" "$@" --slice $prev:$cut >$name.part$i &
		pids="$pids $!"
		echo "$prev $cut" >$name.bounds$i
		prev=$cut
	done
	for pid in $pids; do wait $pid || { echo "a slice failed"; return 1; }; done
	j=0
	: >$name.joined
	while [ $j -lt $i ]; do
		j=$((j + 1))
		read -r from to <$name.bounds$j
		test_eq "$(file_size $name.part$j)" $((to - from)) &&
		test_eq "$("$SQCOW2" "$@" --slice $from:$to --print-size)" $((to - from)) &&
		cat $name.part$j >>$name.joined || return 1
	done
	cmp $name.joined "$whole"
}

# random_cuts SIZE N SEED: up to N sorted cut points inside SIZE.
random_cuts() {
	awk -v size="$1" -v n="$2" -v seed="$3" 'BEGIN {
		srand(seed); k = 1 + int(rand() * n)
		for (i = 1; i < k; i++) print int(rand() * size)
	}' | sort -n | uniq | tr "\n" " "
}

test_expect_success 'setup' '
	make_raw disk.raw 9000000 && put_data disk.raw 1000 300000 &&
	put_data disk.raw 2097152 65536 && put_data disk.raw 5000000 1 &&
	put_data disk.raw 8999000 1000 &&
	head -c 1048576 /dev/zero | dd of=disk.raw bs=1M seek=6 conv=notrunc status=none &&
	printf "1000 300000\n2097152 65536\n5000000 1\n8999000 1000\n" >disk.ranges &&
	cp disk.raw base.raw && put_data base.raw 7000000 4096 &&
	"$SQCOW2" base.raw >base.qcow2
'

seed=${SEED:-20261127}
for case in 1 2 3 4 5 6 7 8 9 10 11 12; do
	cs=$(echo "512 4k 64k 2M 64k 4k 512 64k 2M 4k 64k 64k" | cut -d" " -f$case)
	opts=$(echo "- --compat=0.10 -b - --sparsify - -b --sparsify --compat=0.10 - - -b -" |
		cut -d" " -f$case)
	test_expect_success "random slices, -c $cs $opts, from a file and a pipe" '
		case $opts in
		-) set -- -c $cs --no-sparsify -r disk.ranges ;;
		-b) set -- -c $cs --no-sparsify -r disk.ranges -b base.qcow2 -F qcow2 ;;
		--sparsify) set -- -c $cs --sparsify ;;
		*) set -- -c $cs --no-sparsify $opts -r disk.ranges ;;
		esac &&
		"$SQCOW2" "$@" disk.raw >whole.qcow2 &&
		cuts=$(random_cuts $(file_size whole.qcow2) 8 $((seed + case))) &&
		echo "cuts: $cuts" &&
		slices_join f whole.qcow2 "$cuts" "$@" disk.raw &&
		if [ "$opts" != --sparsify ]; then
			cuts=$(random_cuts $(file_size whole.qcow2) 8 $((seed + case + 100))) &&
			echo "pipe cuts: $cuts" &&
			prev=0 && : >p.joined &&
			for cut in $cuts $(file_size whole.qcow2); do
				cat disk.raw | "$SQCOW2" -s 9000000 "$@" --slice $prev:$cut >>p.joined &&
				prev=$cut || exit 1
			done &&
			cmp p.joined whole.qcow2
		fi
	'
done

# A file is sparsified whole by default, a slice only when asked: the
# MiB of written zeros in disk.raw makes the two images differ.
test_expect_success 'a slice of a file says which image it cuts: no default' '
	"$SQCOW2" disk.raw >sparse.qcow2 &&
	"$SQCOW2" --no-sparsify disk.raw >whole.qcow2 &&
	test $(file_size sparse.qcow2) -lt $(file_size whole.qcow2) &&
	for input in disk.raw "-i disk.raw" "- <disk.raw"; do
		test_fails_with 2 "sqcow2: --slice of a file or block device needs --no-sparsify (cut the image that option makes) or --sparsify (cut the one made whole by default)" \
			sh -c "\"\$SQCOW2\" --slice 100: $input >part" || exit 1
	done &&
	test_fails_with 2 "sqcow2: --slice of a file or block device needs --no-sparsify (cut the image that option makes) or --sparsify (cut the one made whole by default)" \
		"$SQCOW2" --slice 100: --print-size disk.raw &&
	# A pipe is never sparsified: its slices need no word.
	cat disk.raw | "$SQCOW2" -s 9000000 --slice 100: >pipe-slice &&
	cat disk.raw | "$SQCOW2" -s 9000000 | tail -c +101 | cmp - pipe-slice &&
	"$SQCOW2" --no-sparsify --slice : disk.raw | cmp - whole.qcow2 &&
	"$SQCOW2" --sparsify --slice : disk.raw | cmp - sparse.qcow2 &&
	test_eq "$("$SQCOW2" --sparsify --slice 100: --print-size disk.raw)" \
		$(($(file_size sparse.qcow2) - 100))
'

test_expect_success 'bounds: either left out, with suffixes, the end clipped' '
	"$SQCOW2" --no-sparsify disk.raw >whole.qcow2 && size=$(file_size whole.qcow2) &&
	"$SQCOW2" --no-sparsify --slice : disk.raw | cmp - whole.qcow2 &&
	"$SQCOW2" --no-sparsify --slice 64k: disk.raw >tail && tail -c +65537 whole.qcow2 | cmp - tail &&
	"$SQCOW2" --no-sparsify --slice :64k disk.raw >head && head -c 65536 whole.qcow2 | cmp - head &&
	"$SQCOW2" --no-sparsify --slice 100:1T disk.raw >clip && test_eq "$(file_size clip)" $((size - 100)) &&
	test_eq "$("$SQCOW2" --no-sparsify --slice 100:1T --print-size disk.raw)" $((size - 100)) &&
	"$SQCOW2" --no-sparsify --slice $size: disk.raw >empty && test_eq "$(file_size empty)" 0
'

test_expect_success 'bad slices: a start past the end, the wrong way round, with -o' '
	size=$(file_size whole.qcow2) &&
	test_fails_with 1 "sqcow2: --slice starts at $((size + 1)), past the end of the image, $size bytes" \
		"$SQCOW2" --no-sparsify --slice $((size + 1)): disk.raw &&
	test_fails_with 2 - "$SQCOW2" --slice 10:5 disk.raw <<-EOF &&
	sqcow2: --slice ends before it starts: ${SQ}10:5${SQ}
	EOF
	test_fails_with 2 - "$SQCOW2" --slice 10 disk.raw <<-EOF &&
	sqcow2: --slice takes START:END, either left out, not ${SQ}10${SQ}
	EOF
	test_fails_with 2 - "$SQCOW2" --slice 1x: disk.raw <<-EOF &&
	sqcow2: bad --slice start ${SQ}1x${SQ}: a number of bytes, or with k, M, G, T, P or E for powers of 1024
	EOF
	test_fails_with 2 "sqcow2: --slice makes a part of the stream form for a stream; a file given by -o can be written whole" \
		"$SQCOW2" --slice 0:1M -o x.qcow2 disk.raw
'

test_expect_success 'within a slice, the checks of the whole stream still hold' '
	cp disk.raw stale.raw && put_data stale.raw 4000000 1 &&
	size=$("$SQCOW2" --no-sparsify -r disk.ranges --print-size disk.raw) &&
	test_fails_with 1 "sqcow2: non-zero byte at input offset 4000000, outside the ranges" \
		sh -c "cat stale.raw | \"\$SQCOW2\" -s 9000000 -r disk.ranges --slice $((size - 100000)): >/dev/null" &&
	head -c 3000000 disk.raw >short.raw &&
	test_fails_with 1 "sqcow2: input ended at offset 3000000, before --size 9000000" \
		sh -c "cat short.raw | \"\$SQCOW2\" -s 9000000 -r disk.ranges --slice $((size - 100000)): >/dev/null"
'

# Each byte of the input that no cluster stores is checked by one slice:
# the gap before a data cluster by the slice that holds its first byte,
# the input after the last one by the slice that ends the image.  A
# stale range list then fails the part it concerns, from a file as from
# a pipe, and the parts never join into an image that lacks it.
test_expect_success 'every slice cut checks the input no cluster stores, once' '
	make_raw gap.raw 4M && put_data gap.raw 0 4 && put_data gap.raw 2097152 4 &&
	printf "0 4\n2097152 4\n" >gap.ranges &&
	size=$("$SQCOW2" -r gap.ranges --print-size gap.raw) &&
	cut=$((size - 65536)) &&
	for at in 1048576 3145728 4194303; do
		cp gap.raw stale.raw && put_data stale.raw $at 1 &&
		case $at in
		1048576) fails="--slice :$((cut + 1)) --slice $cut: --slice $cut:$((cut + 1))" &&
			passes="--slice :$cut --slice $((cut + 1)):" ;;
		*) fails="--slice $((size - 1)): --slice 0: --slice $cut:" &&
			passes="--slice :$((size - 1)) --slice :$cut" ;;
		esac &&
		set -- $fails &&
		while [ $# -gt 0 ]; do
			for how in file pipe; do
				if [ $how = file ]; then
					test_expect_code 1 "$SQCOW2" --no-sparsify -r gap.ranges $1 $2 \
						stale.raw >part 2>err
				else
					cat stale.raw |
						test_expect_code 1 "$SQCOW2" -s 4M -r gap.ranges $1 $2 >part 2>err
				fi &&
				test_eq "$(cat err)" "sqcow2: non-zero byte at input offset $at, outside the ranges" ||
					{ echo "$how $1 $2 with a byte at $at"; exit 1; }
			done &&
			shift 2 || exit 1
		done &&
		set -- $passes &&
		while [ $# -gt 0 ]; do
			"$SQCOW2" --no-sparsify -r gap.ranges $1 $2 stale.raw >part && shift 2 ||
				{ echo "$1 $2 with a byte at $at failed: not its part to check"; exit 1; }
		done || exit 1
	done
'

# 8 MiB of written zeros, no holes, with data in clusters 0 and 96: the
# last slice reads the gap before cluster 96, the cluster, and the rest;
# the first reads cluster 0 alone; an empty slice reads and checks nothing.
test_expect_success 'what a slice reads: its clusters, and the zeros it alone checks' '
	head -c 8M /dev/zero >wz.raw && put_data wz.raw 0 4 && put_data wz.raw 6291456 4 &&
	printf "0 4\n6291456 4\n" >wz.ranges &&
	size=$("$SQCOW2" -r wz.ranges --print-size wz.raw) && last=$((size - 65536)) &&
	for slice in $last: :$last $last:$last; do
		"$SQCOW2" -v --no-sparsify -r wz.ranges --slice $slice wz.raw >part 2>stats &&
		sed -n "s/^sqcow2: read \([0-9]*\) bytes.*/\1/p" stats || exit 1
	done >read &&
	printf "%s\n" $((8388608 - 65536)) 65536 0 | test_cmp - read &&
	cp wz.raw stale.raw && put_data stale.raw 1048576 1 &&
	"$SQCOW2" --no-sparsify -r wz.ranges --slice $last:$last stale.raw >part &&
	test_eq "$(file_size part)" 0
'

test_expect_success 'the slice that ends the image finds the input too long or too short' '
	make_raw long.raw 3M && put_data long.raw 0 3145728 &&
	size=$(cat long.raw | "$SQCOW2" -s 2M --print-size) &&
	cat long.raw | "$SQCOW2" -s 2M --slice :$((size / 2)) >part &&
	test_fails_with 1 "sqcow2: input longer than --size 2097152" \
		sh -c "cat long.raw | \"\$SQCOW2\" -s 2M --slice $((size / 2)): >part" &&
	make_raw empty.ranges 0 && make_raw zero.raw 1M &&
	test_fails_with 1 "sqcow2: input ended at offset 1048576, before --size 2097152" \
		sh -c "cat zero.raw | \"\$SQCOW2\" -s 2M -r empty.ranges --slice 1: >part"
'

test_expect_success 'a slice of a 64 GiB disk reads only the input behind its clusters' '
	make_raw huge.raw 64G &&
	for gib in 1 17 33 49 63; do put_data huge.raw $((gib << 30)) 1048576 || exit 1; done &&
	"$SQCOW2" --map huge.raw >huge.ranges &&
	"$SQCOW2" -r huge.ranges huge.raw >huge.qcow2 &&
	size=$(file_size huge.qcow2) &&
	# The last 2 MiB of the image: the data of the last two ranges.
	"$SQCOW2" -v --no-sparsify -r huge.ranges --slice $((size - 2097152)): huge.raw >last 2>stats &&
	tail -c 2097152 huge.qcow2 | cmp - last &&
	read=$(sed -n "s/^sqcow2: read \([0-9]*\) bytes.*/\1/p" stats) &&
	echo "read $read bytes" && test_eq "$read" 2097152
'

start_httpd store || exit 1

test_expect_success 'the README: four slices at once, joined, are the image' '
	readme_example "Four parts made at once" >parts &&
	cat parts && run_example parts &&
	"$SQCOW2" --no-sparsify disk.raw | cmp - disk.qcow2 &&
	verify disk.qcow2 disk.raw
'

test_expect_success 'the README: an upload cut short resumes where the server stopped' '
	size=$("$SQCOW2" --print-size disk.raw) &&
	{ "$SQCOW2" disk.raw | curl -s -T - -H "Content-Length: $size" \
		-H "Transfer-Encoding:" "$URL/disk.qcow2?fail_after=300000" || true; } &&
	test_eq "$(file_size store/disk.qcow2)" 300000 &&
	readme_example "here with a server that takes a Content-Range:" >resume &&
	cat resume && run_example resume &&
	"$SQCOW2" disk.raw | cmp - store/disk.qcow2 &&
	verify store/disk.qcow2 disk.raw
'

test_done

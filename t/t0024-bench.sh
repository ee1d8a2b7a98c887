#!/bin/sh
# make bench's script: its harness on commands that fail or write the
# wrong bytes, and the whole bench in its quick form, whose every row
# must run, pass its checks and give a ratio.
. "$(dirname "$0")/lib.sh"

# The rows of read/write fallbacks preload t/bin/fault.so before ASan.
ASAN_OPTIONS=verify_asan_link_order=0:${ASAN_OPTIONS:-}
export ASAN_OPTIONS

# bench_rows FILE: the rows that FILE calls, run by the bench's harness
# with REPEAT 2; prints them, then their memory, then bench_failed.
bench_rows() {
	(
		BENCH_STATE=$PWD/.state REPEAT=2 HAVE_TIME=0
		[ -x /usr/bin/time ] && HAVE_TIME=1
		. "$T_DIR/bench-lib.sh" && bench_init && . "$PWD/$1" || exit 1
		cat "$BENCH_STATE/rss"
		echo "failed=$bench_failed"
	)
}

test_expect_success 'a command that fails drops its row, in a pipe too' '
	printf abc >a.raw &&
	cat >rows <<-\EOF &&
	pair "usage" "-" "sqcow2 --no-such-option" "true" "cat a.raw" "is_raw a.raw"
	pair "in a pipe" "-" "cat a.raw | sqcow2 -s 1 | cat" "true" "cat a.raw" "is_raw a.raw"
	pair "reference" "-" "cat a.raw" "is_raw a.raw" "cat no.raw" "true"
	EOF
	bench_rows rows >rows.out &&
	grep "^usage  *FAILED: sqcow2 --no-such-option: sqcow2: unknown option" rows.out &&
	grep "^in a pipe  *FAILED: cat a.raw | sqcow2 -s 1 | cat: sqcow2: input longer" rows.out &&
	grep "^reference  *FAILED: cat no.raw: cat: no.raw: No such file" rows.out &&
	test_eq "$(tail -n 1 rows.out)" failed=1 &&
	! grep -q " s " rows.out
'

test_expect_success 'a wrong output says so, once per row; a right one has a ratio' '
	printf abc >a.raw &&
	head -c 65536 /dev/urandom >b.raw &&
	"$SQCOW2" --no-sparsify b.raw >b.qcow2 &&
	cat >rows <<-\EOF &&
	pair "wrong" "-" "printf abd" "is_raw a.raw" "cat a.raw" "is_raw a.raw"
	pair "wrong image" "-" "cat b.raw" "is_image b.raw" "cat b.raw" "is_raw b.raw"
	pair "right" "goal" "sqcow2 -d b.qcow2" "is_raw b.raw" "cat b.raw" "is_raw b.raw"
	pair "image" "goal" "sqcow2 -s 64k <b.raw" "is_image b.raw" "cat b.raw" "is_raw b.raw"
	EOF
	bench_rows rows >rows.out &&
	grep "^wrong  *WRONG OUTPUT: printf abd: " rows.out &&
	grep "^wrong image  *WRONG OUTPUT: cat b.raw: " rows.out &&
	grep "^right  *[0-9]*\.[0-9]* s  *[0-9]*\.[0-9]* s  *\([0-9]*\.[0-9][0-9]\|-\)   goal$" rows.out &&
	grep "^image  *[0-9]*\.[0-9]* s .*   goal$" rows.out &&
	test_eq "$(tail -n 1 rows.out)" failed=1
'

if [ ! -x /usr/bin/time ]; then
	test_skip_missing 'the memory figure is that of sqcow2, not of the pipeline' 'no GNU time (Debian: time)'
elif [ "$VARIANT" = valgrind ]; then
	test_skip 'the memory figure is that of sqcow2, not of the pipeline' 'the RSS would be valgrind'\''s'
else
test_expect_success 'the memory figure is that of sqcow2, not of the pipeline' '
	head -c 1M /dev/zero >z.raw &&
	cat >rows <<-\EOF &&
	pair "memory" "-" \
		"cat z.raw | sqcow2 -s 1M | python3 -c \"import sys; b = bytearray(64 << 20); sys.stdin.buffer.read()\"" \
		"true" "cat z.raw" "true"
	EOF
	bench_rows rows >rows.out &&
	set -- $(grep "^memory " rows.out | tail -n 1 | sed "s/^memory //") &&
	test "$1" -lt 16384 && test_eq "$2" - &&
	test_eq "$(tail -n 1 rows.out)" failed=0
'
fi

if [ "$VARIANT" = valgrind ]; then
	test_skip 'the quick bench gives every row a ratio' 'too slow under valgrind'
	test_done
fi

test_expect_success 'the quick bench runs every row and exits 0' '
	BENCH_QUICK=1 BENCH_DIR="$TRASH/bench" sh "$T_DIR/bench.sh" "$SQCOW2" \
		"$T_DIR/bin/fault.so" >bench.out 2>&1 &&
	! grep -E "FAILED|WRONG OUTPUT" bench.out
'

# The README's table as the bench prints it, and the table of memory.
awk '/^The table, as the README shows it:/ { on = 1; next }
	on && /^    / { print; seen = 1; next } seen { exit }' bench.out >table 2>/dev/null
awk '/^Peak RSS/ { on = 1; next } on && /^  / { print; next } on { exit }' \
	bench.out >rss 2>/dev/null

test_expect_success 'its table is the README'\''s, and every row has a ratio' '
	test_eq "$(head -n 1 table)" \
		"    case                                    sqcow2   reference   ratio   goal" &&
	sed 1d table >rows && test -s rows &&
	awk "{ sq = substr(\$0, 40, 11); ref = substr(\$0, 52, 11); r = substr(\$0, 64, 7)
		if (sq !~ /^ *[0-9]+\.[0-9][0-9][0-9] s\$/ || ref !~ /^ *[0-9]+\.[0-9][0-9][0-9] s\$/ ||
		    r !~ /^ *[0-9]+\.[0-9][0-9]\$/) { print \"no ratio: \" \$0; bad = 1 } }
		END { exit bad }" rows
'

test_expect_success 'it has the rows of each kind, 2M clusters too' '
	want=11 &&
	{ [ "$HAVE_QEMU" = 0 ] || want=30; } &&
	test "$(wc -l <rows)" -ge $want &&
	for row in "dense: stream" "dense 2M: stream" "half: file, vs --no-sparsify" \
	    "zeros: default, vs --no-sparsify" "dense4: 4 slices" "spread: last" \
	    "dense: -d stream"; do
		grep -q "^    $row" rows || { echo "no row $row"; exit 1; }
	done &&
	{ [ "$HAVE_QEMU" = 0 ] || grep -q "^    zeros 2M: -o, vs qemu-img" rows; }
'

if [ -x /usr/bin/time ]; then
test_expect_success 'every row that runs sqcow2 has its peak RSS' '
	sed 1d rss >rss.rows &&
	test "$(wc -l <rss.rows)" = "$(wc -l <rows)" &&
	awk "/^  floor: / { next }
		substr(\$0, 38, 10) !~ /^ *[0-9]+\$/ { print \"no RSS: \" \$0; bad = 1 }
		END { exit bad }" rss.rows
'
fi

test_done

# t/bench-lib.sh: the harness of t/bench.sh, which sources it.
#
# A row is one call:
#
#	pair NAME GOAL SQ_COMMAND SQ_CHECK REF_COMMAND REF_CHECK
#
# Commands are shell text run from the bench directory.  In them, sqcow2
# and qemu-img run under GNU time, so that a row's memory figure is
# theirs, not that of cat or the shell, and a failure of either anywhere
# in a pipeline fails the row (dash has no pipefail).  What a command
# writes to standard output is discarded when timed, and kept in $OUT on
# the first run, whose output its CHECK (shell text: is_image, is_raw,
# ...) must find right.  Files named out* are outputs: each run starts
# without them.
#
# bench_init sets up, given SQCOW2, BENCH_STATE (a directory of its own),
# REPEAT, HAVE_QEMU and HAVE_TIME.

bench_init() {
	rm -rf "$BENCH_STATE" && mkdir -p "$BENCH_STATE" || exit 1
	status=$BENCH_STATE/status
	OUT=out.stdout
	bench_failed=0
	: >"$BENCH_STATE/table" && : >"$BENCH_STATE/rss" &&
	: >"$BENCH_STATE/sizes" && : >"$BENCH_STATE/notes" || exit 1
}

# tool BINARY ARG...: run BINARY and append its peak RSS in KiB, and how
# it failed if it did, to the run's status file, as GNU time words it;
# without GNU time, only a failure.
tool() {
	if [ "$HAVE_TIME" = 1 ]; then
		/usr/bin/time -a -f %M -o "$status" "$@"
		return
	fi
	"$@" && return
	set -- $?
	echo "Command exited with non-zero status $1" >>"$status"
	return "$1"
}

sqcow2() { tool "$SQCOW2" "$@"; }
qemu_img() { tool qemu-img "$@"; }

# runnable COMMAND: COMMAND as run, where qemu-img begins a command:
# a shell function may not have that name.
runnable() {
	printf '%s\n' "$1" |
		sed -e 's/^qemu-img /qemu_img /' -e 's/\([ |;&(]\)qemu-img /\1qemu_img /g'
}

# run_once COMMAND SINK: run COMMAND once with its standard output to
# SINK and sets run_usec (wall time) and run_rss (the largest figure of
# the status file, or -); returns non-zero if any part failed, its
# stderr left in BENCH_STATE/err.  A command's own preparation appends
# the microseconds it took to BENCH_STATE/untimed, which are not counted.
run_once() {
	rm -f out* xfs/out* && : >"$status" && : >"$BENCH_STATE/untimed" || exit 1
	run_start=$(date +%s%N)
	(eval "$1") >"$2" 2>"$BENCH_STATE/err"
	run_exit=$?
	run_end=$(date +%s%N)
	run_usec=$(( (run_end - run_start) / 1000 - $(awk '{ usec += $1 }
		END { print usec + 0 }' "$BENCH_STATE/untimed") ))
	run_rss=$(awk '/^[0-9]+$/ && $1 + 0 > max { max = $1 + 0 }
		END { print max ? max : "-" }' "$status")
	[ "$run_exit" = 0 ] && ! grep -q '^Command' "$status"
}

# failed SHOWN: the reason of a row whose command SHOWN failed: the last
# line of its stderr, else how GNU time saw it end.
failed() {
	why=$(tail -n 1 "$BENCH_STATE/err")
	[ -n "$why" ] || why=$(grep -m1 '^Command' "$status")
	row_reason="FAILED: $1: $why"
}

# first_run COMMAND SHOWN CHECK: the run that warms the cache, whose
# output CHECK must accept; sets checked_size to the size of the image
# CHECK read, or -.  Else sets row_reason and returns 1.
first_run() {
	if ! run_once "$1" "$OUT"; then
		failed "$2"
		return 1
	fi
	echo - >"$BENCH_STATE/size"
	if ! { eval "$3"; } >"$BENCH_STATE/check" 2>&1; then
		row_reason="WRONG OUTPUT: $2: $(tail -n 1 "$BENCH_STATE/check")"
		return 1
	fi
	checked_size=$(cat "$BENCH_STATE/size")
}

# rounds: REPEAT rounds of both sides, the first of each round
# alternating; appends "USEC RSS" of each run to BENCH_STATE/a or /b.
# On a failure, sets row_reason and returns 1.
rounds() {
	: >"$BENCH_STATE/a" && : >"$BENCH_STATE/b" || exit 1
	round=1
	while [ "$round" -le "$REPEAT" ]; do
		order="a b"
		[ $((round % 2)) = 0 ] && order="b a"
		for side in $order; do
			eval "command=\$${side}_command shown=\$${side}_shown"
			if ! run_once "$command" /dev/null; then
				failed "$shown"
				return 1
			fi
			echo "$run_usec $run_rss" >>"$BENCH_STATE/$side"
		done
		round=$((round + 1))
	done
}

# median SIDE: "SECONDS RSS" of the median run of SIDE (the lower of the
# two middle ones for an even REPEAT).
median() {
	sort -n "$BENCH_STATE/$1" | sed -n "$(( (REPEAT + 1) / 2 ))p" |
		awk '{ printf "%.3f %s\n", $1 / 1e6, $2 }'
}

ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN {
		if (a ~ /^[0-9.]+$/ && b + 0 > 0) printf "%.2f", a / b; else print "-" }'
}

# pair NAME GOAL SQ_COMMAND SQ_CHECK REF_COMMAND REF_CHECK: time sqcow2's
# command against the reference in turn and print the row: both medians
# and their ratio, or why there is none.  Sets sq_seconds, sq_rss,
# sq_size and the same of ref_ for the caller: - where there is none.
pair() {
	sq_seconds=- sq_rss=- sq_size=- ref_seconds=- ref_rss=- ref_size=-
	a_shown=$3 a_command=$(runnable "$3")
	b_shown=$5 b_command=$(runnable "$5")
	if first_run "$a_command" "$a_shown" "$4" && sq_size=$checked_size &&
	    first_run "$b_command" "$b_shown" "$6" && ref_size=$checked_size &&
	    rounds; then
		set -- "$1" "$2" $(median a) $(median b)
		sq_seconds=$3 sq_rss=$4 ref_seconds=$5 ref_rss=$6
		row "$1" "$3 s" "$5 s" "$(ratio "$3" "$5")" "$2"
		printf '%-34s %10s %10s\n' "$1" "$4" "$6" >>"$BENCH_STATE/rss"
		[ "$sq_size" = - ] || printf '%-34s %12s %12s %8s\n' "$1" "$sq_size" \
			"$ref_size" "$(ratio "$sq_size" "$ref_size")" >>"$BENCH_STATE/sizes"
	else
		bench_failed=1
		printf '%-34s %s\n' "$1" "$row_reason" | tee -a "$BENCH_STATE/table"
	fi
}

# row NAME SQCOW2 REFERENCE RATIO GOAL: print a row of the table, as the
# README shows it.
row() {
	printf '%-34s %11s %11s %7s   %s\n' "$1" "$2" "$3" "$4" "$5" |
		tee -a "$BENCH_STATE/table"
}

# note TEXT: a line printed now and again after the tables.
note() {
	echo "  $1" | tee -a "$BENCH_STATE/notes"
}

# The checks, run once per command, in the shell of the bench.

# is_image RAW [IMAGE]: IMAGE (default: the kept standard output) is a
# valid qcow2 image of RAW's size that reads back as RAW: qemu-img check
# and compare where qemu-img exists, else sqcow2 -d and cmp.
is_image() {
	set -- "$1" "${2:-$OUT}"
	stat -c %s "$2" >"$BENCH_STATE/size" || return 1
	if [ "$HAVE_QEMU" = 0 ]; then
		"$SQCOW2" -d "$2" | cmp - "$1"
		return
	fi
	qemu-img check -q -f qcow2 "$2" || { echo "$2: qemu-img check failed"; return 1; }
	set -- "$1" "$2" "$(qemu-img info --output=json -f qcow2 "$2" |
		sed -n 's/^ *"virtual-size": \([0-9]*\).*/\1/p')"
	[ "$3" = "$(stat -c %s "$1")" ] || { echo "$2: a disk of $3 bytes"; return 1; }
	qemu-img compare -q -f qcow2 -F raw "$2" "$1" ||
		{ echo "$2: does not read back as $1"; return 1; }
}

# is_raw RAW [FILE]: FILE (default: the kept standard output) holds the
# bytes of RAW; qemu-img compare passes over holes where cmp cannot.
is_raw() {
	set -- "$1" "${2:-$OUT}"
	[ "$(stat -c %s "$2")" = "$(stat -c %s "$1")" ] ||
		{ echo "$2: not the size of $1"; return 1; }
	if [ "$HAVE_QEMU" = 0 ]; then
		cmp "$2" "$1"
		return
	fi
	qemu-img compare -q -f raw -F raw "$2" "$1" || { echo "$2: differs from $1"; return 1; }
}

# is_parts RAW PART...: the parts, joined, are an image that reads back
# as RAW.
is_parts() {
	raw=$1
	shift
	cat "$@" | "$SQCOW2" -d | cmp - "$raw"
}

# is_last_slice START RAW FILE: FILE is the image of RAW made with
# --no-sparsify, from byte START to its end.
is_last_slice() {
	"$SQCOW2" --no-sparsify "$2" | tail -c +$(($1 + 1)) | cmp - "$3"
}

# print_tables: the rows as the README's table shows them, then the
# memory and size of each, and the notes.
print_tables() {
	echo
	echo "The table, as the README shows it:"
	echo
	printf '    %-34s %11s %11s %7s   %s\n' case sqcow2 reference ratio goal
	sed 's/^/    /' "$BENCH_STATE/table"
	echo
	echo "Peak RSS of the median run, KiB (sqcow2's goal: <= 4096)"
	printf '  %-34s %10s %10s\n' case sqcow2 reference
	sed 's/^/  /' "$BENCH_STATE/rss"
	echo
	echo "Image size, bytes (goal: sqcow2 / qemu-img <= 1.0)"
	printf '  %-34s %12s %12s %8s\n' case sqcow2 reference ratio
	sed 's/^/  /' "$BENCH_STATE/sizes"
	if [ -s "$BENCH_STATE/notes" ]; then
		echo
		cat "$BENCH_STATE/notes"
	fi
}

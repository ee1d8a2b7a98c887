#!/bin/sh
# The fuzz harnesses of the pure core: the kept corpus replayed in every
# variant; in the plain one, each libFuzzer harness also runs for a bounded
# time (FUZZ_SECONDS: 60 under CI=true, else 10).
. "$(dirname "$0")/lib.sh"

top=$OLDPWD
bin=$(dirname "$SQCOW2")
[ -x "$bin/replay-ranges" ] || bin=$top/t/bin
seconds=${FUZZ_SECONDS:-10}
[ "${CI:-}" = true ] && seconds=${FUZZ_SECONDS:-60}

for harness in ranges layout image inflate; do
	test_expect_success "the $harness corpus replays clean" '
		"$bin/replay-$harness" "$top/t/fuzz/corpus/$harness" >replay.tap &&
		grep -q "^ok 1 - replayed [1-9][0-9]* inputs" replay.tap
	'
done

if [ "${VARIANT:-plain}" != plain ]; then
	echo "# libFuzzer runs in the plain variant only"
elif [ -x "$top/t/bin/fuzz-ranges" ] && [ -x "$top/t/bin/fuzz-layout" ] &&
    [ -x "$top/t/bin/fuzz-image" ] && [ -x "$top/t/bin/fuzz-inflate" ]; then
	for harness in ranges layout image inflate; do
		# Images with extended L2 entries need 16 KiB clusters; a range
		# file needs more than the 4096 bytes a line of it may hold.
		case $harness in image) max_len=131072 ;; ranges) max_len=8192 ;;
		inflate) max_len=16384 ;; *) max_len=4096 ;; esac
		test_expect_success "libFuzzer on $harness for $seconds s finds nothing" '
			cp -r "$top/t/fuzz/corpus/$harness" corpus-$harness &&
			"$top/t/bin/fuzz-$harness" -max_total_time=$seconds -max_len=$max_len \
				corpus-$harness >fuzz.log 2>&1 &&
			sed -n "s/^Done \([0-9]*\) runs in \([0-9]*\) second.*/# fuzz-$harness: \1 runs in \2 s/p" \
				fuzz.log >"$TRASH/done-$harness"
		'
		cat "$TRASH/done-$harness" 2>/dev/null
	done
elif [ "${CI:-}" = true ]; then
	echo "Bail out! clang with libFuzzer is missing and CI=true (.ci/run installs it)"
	exit 1
else
	test_skip 'libFuzzer runs' 'clang with libFuzzer not found (Debian: clang libclang-rt-dev)'
fi

test_done

#!/bin/sh
# The fuzz harnesses of the pure core: the kept corpus of each replayed, in
# every variant.  Fresh fuzzing finds new inputs at random, so it is not a
# test that gates a change: make fuzz runs it, and .ci/run runs that as a
# step of its own that reports what it found.
. "$(dirname "$0")/lib.sh"

top=$OLDPWD
bin=$(dirname "$SQCOW2")

for harness in ranges layout image inflate deflate zstd; do
	if [ ! -x "$bin/replay-$harness" ]; then
		test_skip_missing "the $harness corpus replays clean" \
			'its oracle library not found (Debian: libzstd-dev)'
		continue
	fi
	test_expect_success "the $harness corpus replays clean" '
		"$bin/replay-$harness" "$top/t/fuzz/corpus/$harness" >replay.tap &&
		grep -q "^ok 1 - replayed [1-9][0-9]* inputs" replay.tap
	'
done

test_done

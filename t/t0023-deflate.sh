#!/bin/sh
# The raw deflate compressor of clusters (deflate.h): its unit tests,
# each stream decoded by zlib called as QEMU calls it, by inflate.c and
# through a 4 KiB window, in the variant's build (plain, or under ASan
# and UBSan).
. "$(dirname "$0")/lib.sh"

top=$OLDPWD
bin=$(dirname "$SQCOW2")
[ -x "$bin/unit-deflate" ] || bin=$top/t/bin

test_expect_success 'the unit tests of the deflater pass' '
	{ "$bin/unit-deflate" >unit.tap 2>&1 && ! grep -q "^not ok" unit.tap ||
		{ grep -v "^ok " unit.tap | head -n 40; false; }; } &&
	sed -n "s/^1\.\./# unit-deflate: /p" unit.tap >"$TRASH/unit-count"
'
sed "s/$/ tests/" "$TRASH/unit-count" 2>/dev/null

test_done

#!/bin/sh
# The zstd decoder of compressed clusters (zstd_decode.h): its unit
# tests, each input checked against libzstd called as QEMU calls it, in
# the variant's build (plain, or under ASan and UBSan).
. "$(dirname "$0")/lib.sh"

top=$OLDPWD
bin=$(dirname "$SQCOW2")
[ -x "$bin/unit-zstd" ] || bin=$top/t/bin

if [ ! -x "$bin/unit-zstd" ]; then
	test_skip_missing 'the unit tests of the zstd decoder pass' \
		'libzstd, their oracle, not found (Debian: libzstd-dev)'
	test_done
fi

test_expect_success 'the unit tests of the zstd decoder pass' '
	{ "$bin/unit-zstd" >unit.tap 2>&1 && ! grep -q "^not ok" unit.tap ||
		{ grep -v "^ok " unit.tap | head -n 40; false; }; } &&
	sed -n "s/^1\.\./# unit-zstd: /p" unit.tap >"$TRASH/unit-count"
'
sed "s/$/ tests/" "$TRASH/unit-count" 2>/dev/null

test_done

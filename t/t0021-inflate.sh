#!/bin/sh
# The raw deflate decoder of compressed clusters (inflate.h): its unit
# tests, each stream checked against zlib called as QEMU calls it, in
# the variant's build (plain, or under ASan and UBSan).
. "$(dirname "$0")/lib.sh"

top=$OLDPWD
bin=$(dirname "$SQCOW2")
[ -x "$bin/unit-inflate" ] || bin=$top/t/bin

test_expect_success 'the unit tests of the inflater pass' '
	{ "$bin/unit-inflate" >unit.tap 2>&1 && ! grep -q "^not ok" unit.tap ||
		{ grep -v "^ok " unit.tap | head -n 40; false; }; } &&
	sed -n "s/^1\.\./# unit-inflate: /p" unit.tap >"$TRASH/unit-count"
'
sed "s/$/ tests/" "$TRASH/unit-count" 2>/dev/null

test_done
